"""``arx``: operate an ARX deployment.

Administrative commands are clients of the admin API (``/v1/admin``). They act
with an org admin token (``arxadm_…``) or an access token from the IdP, so the
API's roles, allowlists and audit trail apply to the CLI as to any other
caller, and the CLI needs neither database access nor the KEK. ``serve``,
``db migrate`` and ``demo`` are the operator's own: they run the system
rather than ask it.

Configuration: ``ARX_URL`` (default http://127.0.0.1:8080) or ``--url``, and
``ARX_TOKEN`` or ``--token-file FILE|-``; ``arx bootstrap`` uses
``ARX_BOOTSTRAP_TOKEN``. A credential is never an argument: it would land in
shell history and in the process table. Output is JSON on stdout; a failure is
one line on stderr, ``arx: error: <detail> [<code>]``, with exit status 1. A
key or token is printed once, by the command that creates it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias, get_args

import msgspec

from arx.admin.types import PersonRole, TokenRole
from arx.cli import audit, policy, policy_replay
from arx.cli import commands as cmd
from arx.cli.client import AdminClient, CLIError, check_base_url
from arx.config import ConfigError, load_settings
from arx.errors import ARXError

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_ENV = "ARX_TOKEN"  # noqa: S105 -- the variable's name, not a secret
BOOTSTRAP_TOKEN_ENV = "ARX_BOOTSTRAP_TOKEN"  # noqa: S105 -- likewise
# Options naming a file whose content may come from stdin ("-").
_INPUTS = (
    "token_file",
    "secret_file",
    "owner_password_file",
    "intent_file",
    "bot_token_file",
    "signing_secret_file",
    "webhook_url_file",
)

_Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# --- reading inputs ---------------------------------------------------------------------


def _read(source: str) -> bytes:
    """A file's bytes, or stdin's for ``-``."""
    return sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()


def _credential(ns: argparse.Namespace, env: Mapping[str, str]) -> str:
    variable: str = ns.credential_env
    if ns.token_file:
        token = _read(ns.token_file).decode("utf-8", "replace").strip()
        origin = "--token-file"
    else:
        token = env.get(variable, "").strip()
        origin = variable
    if not token:
        raise CLIError(
            f"no credential: set {variable} or pass --token-file FILE|-", "no_credential"
        )
    if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
        # Never quoted: it is a secret. Tokens are printable ASCII; anything else
        # is a wrong file, and could not travel in an HTTP header anyway.
        raise CLIError(f"the credential from {origin} is not a single word", "bad_credential")
    return token


def _json_object(source: str, what: str) -> dict[str, Any]:
    try:
        return msgspec.json.decode(_read(source), type=dict[str, Any])
    except msgspec.DecodeError as exc:
        # msgspec names the position, never the content (which may be a secret).
        raise CLIError(f"{what} is not a JSON object: {exc}", "bad_input") from None


def _password(source: str | None) -> str | None:
    if source is None:
        return None
    # Only the line ending goes: spaces may be part of a password.
    return _read(source).decode("utf-8").rstrip("\r\n")


def _intent(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.intent_file:
        if ns.purpose is not None or ns.scope:
            raise CLIError("give --intent-file, or --purpose and --scope, not both", "bad_input")
        return _json_object(ns.intent_file, "the intent file")
    scope: dict[str, list[str]] = {}
    for item in ns.scope or []:
        connector, sep, ops = item.partition("=")
        if not sep or not connector or not ops:
            raise CLIError(f"--scope expects CONNECTOR=OP[,OP...], got {item!r}", "bad_input")
        scope.setdefault(connector, []).extend(o for o in ops.split(",") if o)
    return {"purpose": ns.purpose or "", "scope": scope}


def _one_stdin(ns: argparse.Namespace) -> None:
    if [getattr(ns, name, None) for name in _INPUTS].count("-") > 1:
        raise CLIError("only one input can come from stdin (-)", "bad_input")


# --- the parser --------------------------------------------------------------------------


def _group(sub: _Sub, name: str, help_: str) -> _Sub:
    return sub.add_parser(name, help=help_).add_subparsers(dest=f"{name}_command", required=True)


def _api(
    sub: _Sub, name: str, help_: str, *, org: bool = True, credential_env: str = TOKEN_ENV
) -> argparse.ArgumentParser:
    """A command that calls the admin API, with the connection options."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("--url", help=f"the ARX API (default: $ARX_URL, else {DEFAULT_URL})")
    p.add_argument(
        "--token-file",
        metavar="FILE|-",
        help=f"read the credential from FILE or stdin instead of ${credential_env}",
    )
    if org:
        p.add_argument(
            "--org", metavar="SLUG|UUID", help="the org (default: the credential's only org)"
        )
    p.set_defaults(credential_env=credential_env)
    return p


def _roles(p: argparse.ArgumentParser, choices: tuple[str, ...], *, required: bool) -> None:
    p.add_argument(
        "--role",
        dest="roles",
        action="append",
        choices=choices,
        required=required,
        help="repeat for several roles",
    )


def _add_org_commands(sub: _Sub) -> None:
    p = _api(
        sub,
        "bootstrap",
        "create the first org, its owner and an owner token",
        org=False,
        credential_env=BOOTSTRAP_TOKEN_ENV,
    )
    p.add_argument("--org", dest="slug", required=True, metavar="SLUG", help="the new org's slug")
    p.add_argument("--name", required=True, help="the new org's display name")
    p.add_argument("--owner-email", required=True)
    p.add_argument("--owner-display-name", default="")
    p.add_argument(
        "--owner-password-file",
        metavar="FILE|-",
        help="a local password for the owner (omit when the owner signs in with the IdP)",
    )
    p.set_defaults(
        call=lambda s, ns: cmd.bootstrap(
            s.client,
            slug=ns.slug,
            name=ns.name,
            owner_email=ns.owner_email,
            owner_display_name=ns.owner_display_name,
            owner_password=_password(ns.owner_password_file),
        ),
    )
    _api(sub, "whoami", "the caller and their orgs and roles", org=False).set_defaults(
        call=lambda s, _: cmd.whoami(s.client)
    )

    org = _group(sub, "org", "the org: its kill switch and allowlists")
    _api(org, "show", "the org, its kill switch and allowlists").set_defaults(
        call=lambda s, _: cmd.org_show(s)
    )
    p = _api(org, "disable", "switch off every agent of the org at once")
    p.add_argument("--reason", required=True)
    p.set_defaults(call=lambda s, ns: cmd.org_switch(s, disabled=True, reason=ns.reason))
    p = _api(org, "enable", "switch the org's agents back on")
    p.add_argument("--reason", default="")
    p.set_defaults(call=lambda s, ns: cmd.org_switch(s, disabled=False, reason=ns.reason))
    p = _api(org, "allowlist", "networks the org's agent keys and admin credentials work from")
    for which in ("agent", "admin"):
        p.add_argument(
            f"--{which}",
            metavar="CIDR",
            nargs="+",
            action="extend",
            help=f"replace the {which} allowlist with these networks",
        )
        p.add_argument(
            f"--clear-{which}",
            action="store_true",
            help=f"allow {which} credentials from any address",
        )
    p.set_defaults(
        call=lambda s, ns: cmd.org_allowlist(
            s,
            agent=ns.agent,
            admin=ns.admin,
            clear_agent=ns.clear_agent,
            clear_admin=ns.clear_admin,
        )
    )


def _add_agent_commands(sub: _Sub) -> None:
    agent = _group(sub, "agent", "agents and their kill switch")
    p = _api(agent, "create", "register an agent with its intent manifest")
    p.add_argument("--name", required=True)
    p.add_argument("--purpose")
    p.add_argument(
        "--scope",
        action="append",
        metavar="CONNECTOR=OP[,OP...]",
        help="operations the agent declares it needs (globs allowed: hosts:*)",
    )
    p.add_argument(
        "--intent-file", metavar="FILE|-", help="a JSON intent manifest {purpose, scope}"
    )
    p.set_defaults(call=lambda s, ns: cmd.agent_create(s, name=ns.name, intent=_intent(ns)))
    _api(agent, "list", "the org's agents and whether each is disabled").set_defaults(
        call=lambda s, _: cmd.agent_list(s)
    )
    p = _api(agent, "show", "one agent")
    p.add_argument("name")
    p.set_defaults(call=lambda s, ns: cmd.agent_show(s, name=ns.name))
    p = _api(agent, "disable", "the kill switch: refuse every call of the agent at once")
    p.add_argument("name")
    p.add_argument("--reason", required=True)
    p.set_defaults(
        call=lambda s, ns: cmd.agent_switch(s, name=ns.name, disabled=True, reason=ns.reason)
    )
    p = _api(agent, "enable", "switch the agent back on")
    p.add_argument("name")
    p.add_argument("--reason", default="")
    p.set_defaults(
        call=lambda s, ns: cmd.agent_switch(s, name=ns.name, disabled=False, reason=ns.reason)
    )

    key = _group(sub, "key", "agents' API keys")
    p = _api(key, "create", "issue an API key for an agent (shown once)")
    p.add_argument("--agent", required=True, help="agent name")
    p.add_argument("--name", default="", help="a label for the key")
    p.add_argument("--expires-in", type=int, metavar="SECONDS")
    p.set_defaults(
        call=lambda s, ns: cmd.key_create(s, agent=ns.agent, name=ns.name, expires_in=ns.expires_in)
    )
    p = _api(key, "list", "an agent's keys (never their secrets)")
    p.add_argument("--agent", required=True, help="agent name")
    p.set_defaults(call=lambda s, ns: cmd.key_list(s, agent=ns.agent))
    p = _api(key, "rotate", "issue a successor key; the old one works for the overlap")
    p.add_argument("--agent", required=True, help="agent name")
    p.add_argument("key_id")
    p.add_argument(
        "--overlap",
        type=int,
        metavar="SECONDS",
        help="how long the old key keeps working (default: the server's)",
    )
    p.set_defaults(
        call=lambda s, ns: cmd.key_rotate(s, agent=ns.agent, key_id=ns.key_id, overlap=ns.overlap)
    )
    p = _api(key, "revoke", "revoke a key at once")
    p.add_argument("--agent", required=True, help="agent name")
    p.add_argument("key_id")
    p.set_defaults(call=lambda s, ns: cmd.key_revoke(s, agent=ns.agent, key_id=ns.key_id))


def _add_record_commands(sub: _Sub) -> None:
    cred = _group(sub, "credential", "connector credentials")
    p = _api(cred, "set", "store the connector's next credential version (sealed)")
    p.add_argument("--connector", required=True)
    p.add_argument("--secret-file", required=True, metavar="FILE|-", help="a JSON secret")
    p.add_argument("--base-url", help="the tool's API base URL (default: the vendor's)")
    p.set_defaults(
        call=lambda s, ns: cmd.credential_set(
            s,
            connector=ns.connector,
            secret=_json_object(ns.secret_file, "the secret"),
            base_url=ns.base_url,
        )
    )
    _api(cred, "list", "each connector's current credential version (metadata only)").set_defaults(
        call=lambda s, _: cmd.credential_list(s)
    )
    p = _api(cred, "delete", "delete the connector's credential (a tombstone version)")
    p.add_argument("--connector", required=True)
    p.set_defaults(call=lambda s, ns: cmd.credential_delete(s, connector=ns.connector))

    kek = _group(sub, "kek", "the org's key-encryption key: ARX's own, or the org's KMS key")
    _api(kek, "show", "the key, and how many sealed versions each key holds").set_defaults(
        call=lambda s, _: cmd.kek_show(s)
    )
    p = _api(kek, "set", "bring your own key (owner): proved usable, then everything rewrapped")
    p.add_argument("provider", choices=("local", "aws-kms", "azure-key-vault", "gcp-kms"))
    p.add_argument(
        "key", nargs="?", default="", help="key ARN, versioned Key Vault key URL or CryptoKey name"
    )
    p.set_defaults(call=lambda s, ns: cmd.kek_set(s, provider=ns.provider, key=ns.key))
    _api(
        kek, "rewrap", "rewrap what is still under an older key (after ARX_KEK rotates)"
    ).set_defaults(call=lambda s, _: cmd.kek_rewrap(s))

    hosts = _group(sub, "host", "hosts a connector's credentials may go to, beyond its own")
    p = _api(hosts, "list", "the connector's own hosts and the org's")
    p.add_argument("--connector", required=True)
    p.set_defaults(call=lambda s, ns: cmd.host_list(s, connector=ns.connector))
    for verb, help_ in (
        ("add", "allow a host (a name, or *.domain)"),
        ("remove", "stop allowing it"),
    ):
        p = _api(hosts, verb, help_)
        p.add_argument("--connector", required=True)
        p.add_argument("host")
        p.set_defaults(
            call=lambda s, ns, verb=verb: cmd.host_change(
                s, verb, connector=ns.connector, host=ns.host
            )
        )


def _add_people_commands(sub: _Sub) -> None:
    member = _group(sub, "member", "the org's people and their roles")
    _api(member, "list", "the org's people").set_defaults(call=lambda s, _: cmd.member_list(s))
    p = _api(member, "add", "add a person (they sign in with the IdP)")
    p.add_argument("email")
    _roles(p, get_args(PersonRole), required=True)
    p.add_argument("--display-name", default="")
    p.set_defaults(
        call=lambda s, ns: cmd.member_add(
            s, email=ns.email, roles=ns.roles, display_name=ns.display_name
        )
    )
    p = _api(member, "set", "replace a person's roles, or (de)activate them")
    p.add_argument("email")
    _roles(p, get_args(PersonRole), required=False)
    active = p.add_mutually_exclusive_group()
    active.add_argument("--deactivate", dest="active", action="store_const", const=False)
    active.add_argument("--activate", dest="active", action="store_const", const=True)
    p.set_defaults(
        call=lambda s, ns: cmd.member_set(s, email=ns.email, roles=ns.roles, active=ns.active)
    )

    token = _group(sub, "token", "the org's admin tokens")
    _api(token, "list", "the org's admin tokens (never their secrets)").set_defaults(
        call=lambda s, _: cmd.token_list(s)
    )
    p = _api(token, "create", "issue a named admin token (shown once)")
    p.add_argument("name")
    _roles(p, get_args(TokenRole), required=True)
    p.add_argument("--expires-in", type=int, metavar="SECONDS")
    p.set_defaults(
        call=lambda s, ns: cmd.token_create(
            s, name=ns.name, roles=ns.roles, expires_in=ns.expires_in
        )
    )
    p = _api(token, "rotate", "issue a successor token; the old one works for the overlap")
    p.add_argument("token_id")
    p.add_argument("--overlap", type=int, metavar="SECONDS")
    p.set_defaults(call=lambda s, ns: cmd.token_rotate(s, token_id=ns.token_id, overlap=ns.overlap))
    p = _api(token, "revoke", "revoke an admin token at once")
    p.add_argument("token_id")
    p.set_defaults(call=lambda s, ns: cmd.token_revoke(s, token_id=ns.token_id))


def _secret_file(source: str | None) -> str | None:
    """One secret from a file or stdin, without surrounding whitespace."""
    return None if source is None else _read(source).decode("utf-8").strip()


def _add_notification_commands(sub: _Sub) -> None:
    notify = _group(sub, "notifications", "notifying reviewers in Slack and Teams")
    _api(notify, "channels", "where reviewers are notified (never the secrets)").set_defaults(
        call=lambda s, _: cmd.notification_channels(s)
    )
    p = _api(notify, "set-slack", "notify in Slack, with the bot or an incoming webhook")
    p.add_argument("--channel", help="the Slack channel id (C0123456789), with the bot")
    p.add_argument("--bot-token-file", metavar="FILE|-", help="the bot token (xoxb-...)")
    p.add_argument("--signing-secret-file", metavar="FILE|-", help="the Slack app's signing secret")
    p.add_argument(
        "--interactive",
        action="store_true",
        help="Approve/Reject buttons in Slack (needs the bot and the signing secret; "
        "an owner turns it on)",
    )
    p.add_argument("--webhook-url-file", metavar="FILE|-", help="an incoming webhook's URL")
    p.set_defaults(
        call=lambda s, ns: cmd.notification_set_slack(
            s,
            channel=ns.channel,
            bot_token=_secret_file(ns.bot_token_file),
            signing_secret=_secret_file(ns.signing_secret_file),
            interactive=ns.interactive,
            webhook_url=_secret_file(ns.webhook_url_file),
        )
    )
    p = _api(notify, "set-teams", "notify in a Teams channel through a Workflows webhook")
    p.add_argument("--webhook-url-file", metavar="FILE|-", required=True)
    p.set_defaults(
        call=lambda s, ns: cmd.notification_set_teams(
            s, webhook_url=_secret_file(ns.webhook_url_file) or ""
        )
    )
    p = _api(notify, "remove", "stop notifying in a channel")
    p.add_argument("channel", choices=("slack", "teams"))
    p.set_defaults(call=lambda s, ns: cmd.notification_remove(s, channel=ns.channel))
    p = _api(notify, "list", "the org's notifications, newest first")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--failed", dest="status", action="store_const", const="failed", help="failed ones only"
    )
    which.add_argument("--status", choices=("pending", "delivered", "failed", "skipped"))
    p.set_defaults(call=lambda s, ns: cmd.notification_list(s, status=ns.status))
    p = _api(notify, "retry", "requeue a failed notification")
    p.add_argument("delivery_id")
    p.add_argument("--comment", default="", help="why (what was fixed); kept in the audit trail")
    p.set_defaults(
        call=lambda s, ns: cmd.notification_retry(s, delivery_id=ns.delivery_id, comment=ns.comment)
    )


def _add_operator_commands(sub: _Sub) -> None:
    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(operator=_serve)
    db = _group(sub, "db", "database administration")
    db.add_parser(
        "migrate",
        help="apply pending schema migrations (ARX_ADMIN_DATABASE_URL, else ARX_DATABASE_URL)",
    ).set_defaults(operator=_db_migrate)
    retention = db.add_parser(
        "retention",
        help="drop whole months of the audit trail (as the superuser of `arx db migrate`: "
        "ARX_ADMIN_DATABASE_URL, else ARX_DATABASE_URL)",
    )
    retention.add_argument(
        "--drop-before",
        required=True,
        metavar="YYYY-MM",
        help="drop every month before this one (each must be sealed and signed for)",
    )
    retention.add_argument(
        "--actor", help="who is recorded as having dropped them (default: os user)"
    )
    retention.add_argument(
        "--yes", action="store_true", help="really remove the events (there is no undo)"
    )
    retention.set_defaults(operator=_db_retention)
    demo = sub.add_parser("demo", help="start the whole system locally and run the demo agent")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument(
        "--no-wait",
        action="store_true",
        help="approve the escalation as the demo's reviewer instead of waiting for you "
        "on the review page, then stop everything",
    )
    demo.add_argument("--home", type=Path, help="state directory (default: .arx in the checkout)")
    demo.set_defaults(operator=_demo)
    seed = sub.add_parser(
        "seed-example",
        help="found the example org over the API (bootstrap token): owner, agents and keys, "
        "a Falcon sandbox credential, and the example policy pushed and activated",
    )
    seed.add_argument("--url", help=f"the ARX API (default: $ARX_URL, else {DEFAULT_URL})")
    seed.add_argument("--falcon-url", required=True, help="the Falcon sandbox's base URL")
    seed.add_argument(
        "--sandbox-url",
        help="the Okta/Jira/Splunk/Sentinel sandboxes (arx.sandbox.suite), whose secret is "
        "ARX_SANDBOX_SECRET: a credential for each",
    )
    seed.add_argument(
        "--bundle", type=Path, default=Path("bundles/example"), help="the example bundle source"
    )
    seed.set_defaults(operator=_seed_example)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="arx",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add_operator_commands(sub)
    _add_org_commands(sub)
    _add_agent_commands(sub)
    _add_record_commands(sub)
    _add_people_commands(sub)
    _add_notification_commands(sub)
    audit.add_commands(_group(sub, "audit", "the audit trail"), _api)
    policies = _group(sub, "policy", "the org's policy bundles")
    policy.add_commands(policies, _api)
    policy_replay.add_command(policies, _api)
    return p


# --- operator commands (no API) --------------------------------------------------------


def _serve(ns: argparse.Namespace) -> None:
    import uvicorn  # noqa: PLC0415 (only the server needs it; keeps admin commands quick)

    load_settings()  # fail fast, with a clear message, before uvicorn starts
    uvicorn.run(
        "arx.api.app:app_from_env",
        factory=True,
        host=ns.host,
        port=ns.port,
        log_config=None,
        access_log=False,
        workers=ns.workers,
    )


def _db_migrate(_: argparse.Namespace) -> bytes:
    import asyncio  # noqa: PLC0415 (the one command that talks to PostgreSQL)

    import psycopg  # noqa: PLC0415

    from arx.db.migrate import APP_ROLE, CONTROL_ROLE, migrate, set_role_password  # noqa: PLC0415

    async def run() -> list[str]:
        settings = load_settings()
        url = settings.admin_database_url or settings.database_url
        applied = await asyncio.to_thread(migrate, url)
        if settings.app_db_password:
            await asyncio.to_thread(set_role_password, url, APP_ROLE, settings.app_db_password)
        if settings.control_db_password:
            await asyncio.to_thread(
                set_role_password, url, CONTROL_ROLE, settings.control_db_password
            )
        return applied

    try:
        applied = asyncio.run(run())
    except psycopg.Error as exc:
        raise CLIError(
            f"the database refused or could not be reached ({type(exc).__name__}; "
            f"SQLSTATE {exc.sqlstate or 'n/a'})",
            "database_error",
        ) from None
    return msgspec.json.encode({"applied": applied})


def _db_retention(ns: argparse.Namespace) -> bytes:
    import getpass  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    from arx.audit.partitions import drop_months, first_of  # noqa: PLC0415

    before = first_of(ns.drop_before)
    if not ns.yes:
        raise CLIError(
            f"this removes every audit event before {ns.drop_before} for good; add --yes",
            "confirmation_required",
        )
    actor = ns.actor or f"operator:{getpass.getuser()}"
    settings = load_settings()
    try:
        dropped = drop_months(settings.admin_database_url or settings.database_url, before, actor)
    except psycopg.Error as exc:
        # The refusals of arx.drop_audit_months are written for the operator
        # (a month not sealed yet, not signed for yet); they name no secret.
        diag = exc.diag
        said = diag.message_primary if exc.sqlstate and exc.sqlstate[:2] in ("22", "55") else None
        hint = f" ({diag.message_hint})" if said and diag.message_hint else ""
        raise CLIError(
            said + hint
            if said
            else f"the database refused or could not be reached ({type(exc).__name__}; "
            f"SQLSTATE {exc.sqlstate or 'n/a'})",
            "database_error",
        ) from None
    return msgspec.json.encode(
        {
            "dropped": [
                {"partition": partition, "org_id": org, "events": events}
                for partition, org, events in dropped
            ]
        }
    )


def _demo(ns: argparse.Namespace) -> None:
    from arx.devstack.demo import run_demo  # noqa: PLC0415  (dev-only; keeps `arx` lean)

    run_demo(port=ns.port, wait=not ns.no_wait, home=ns.home)


def _seed_example(ns: argparse.Namespace) -> bytes:
    """compose.yaml's seed step. Secrets come from the environment (never
    arguments): ARX_BOOTSTRAP_TOKEN, ARX_SANDBOX_FALCON_CLIENT_ID/SECRET,
    ARX_SANDBOX_SECRET."""
    import secrets  # noqa: PLC0415

    from arx.devstack import seed  # noqa: PLC0415  (dev-only, like demo)

    env = os.environ
    url = check_base_url(ns.url or env.get("ARX_URL") or DEFAULT_URL)
    bootstrap = env.get(BOOTSTRAP_TOKEN_ENV, "").strip()
    if not bootstrap:
        raise CLIError(f"set {BOOTSTRAP_TOKEN_ENV}", "no_credential")
    password = secrets.token_urlsafe(18)
    try:
        seeded = seed.seed_over_api(
            url,
            bootstrap_token=bootstrap,
            owner_password=password,
            falcon_url=ns.falcon_url,
            client_id=env.get("ARX_SANDBOX_FALCON_CLIENT_ID", seed.SANDBOX_CLIENT_ID),
            client_secret=env.get("ARX_SANDBOX_FALCON_CLIENT_SECRET", ""),
            sandbox_url=ns.sandbox_url,
            sandbox_secret=env.get("ARX_SANDBOX_SECRET", ""),
        )
        revision = seed.publish_policy(
            url,
            seeded.org_id,
            seeded.owner_token,
            ns.bundle,
            description="the example org's policy (seed-example)",
        )
    except seed.SeedError as exc:
        raise CLIError(str(exc), "seed_failed") from None
    return msgspec.json.encode(
        {
            "org": seed.ORG_SLUG,
            "owner_email": seeded.owner_email,
            "owner_password": password,
            "owner_token": seeded.owner_token,
            "api_keys": seeded.api_keys,
            "policy_revision": revision,
        }
    )


# --- running a command -------------------------------------------------------------------


def _call_api(ns: argparse.Namespace, env: Mapping[str, str]) -> bytes:
    _one_stdin(ns)
    url = check_base_url(ns.url or env.get("ARX_URL") or DEFAULT_URL)
    token = _credential(ns, env)
    with AdminClient(url, token) as client:
        result: bytes = ns.call(cmd.Session(client, getattr(ns, "org", None)), ns)
    return result


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        if hasattr(ns, "operator"):
            out = ns.operator(ns)
        else:
            # The CLI's configuration is read here, once (as arx.config does for the server).
            out = _call_api(ns, os.environ if env is None else env)
    except CLIError as exc:
        return _fail(str(exc))
    except ARXError as exc:
        return _fail(f"{exc} [{exc.code}]")
    except ConfigError as exc:
        return _fail(f"{exc} [config_error]")
    except OSError as exc:
        return _fail(f"cannot read {exc.filename or 'input'}: {exc.strerror} [io_error]")
    except UnicodeDecodeError:
        return _fail("an input file is not UTF-8 text [bad_input]")
    if out is not None:
        sys.stdout.write(msgspec.json.format(out, indent=2).decode() + "\n")
    return 0


def _fail(message: str) -> int:
    # One line, whatever the server's detail contains.
    flat = " ".join(message.split())
    sys.stderr.write(f"arx: error: {flat}\n")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
