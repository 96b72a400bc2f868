"""``arx``: operate an ARX deployment.

Administrative commands talk to PostgreSQL directly as the application role
(row-level security still applies: each command scopes itself to one org)
and print JSON on stdout. An API key is printed once, when it is created.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import uvicorn

from arx.admin.service import (
    create_agent,
    create_api_key,
    create_org,
    find_agent,
    store_credential,
)
from arx.audit.service import list_events
from arx.config import ConfigError, load_settings
from arx.db.migrate import migrate, set_app_password
from arx.errors import ARXError
from arx.identity.orgs import org_id_for
from arx.identity.types import IntentManifest
from arx.runtime import open_runtime


def _print(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value, enc_hook=str)).decode() + "\n")


def _parse_scope(items: Sequence[str]) -> dict[str, list[str]]:
    """``crowdstrike=hosts:search,hosts:get`` → {"crowdstrike": [...]}."""
    scope: dict[str, list[str]] = {}
    for item in items:
        connector, sep, ops = item.partition("=")
        if not sep or not connector or not ops:
            raise SystemExit(f"--scope expects CONNECTOR=OP[,OP...], got {item!r}")
        scope.setdefault(connector, []).extend(o for o in ops.split(",") if o)
    return scope


async def _with_runtime(fn: Callable[[Any], Awaitable[Any]]) -> Any:
    async with open_runtime(load_settings()) as rt:
        return await fn(rt)


async def _org_create(ns: argparse.Namespace) -> Any:
    return await _with_runtime(
        lambda rt: create_org(rt.pool, slug=ns.slug, name=ns.name, actor="cli")
    )


async def _agent_create(ns: argparse.Namespace) -> Any:
    intent = ns.intent or IntentManifest(
        purpose=ns.purpose or "", scope=_parse_scope(ns.scope or [])
    )

    async def run(rt: Any) -> Any:
        org_id = await org_id_for(rt.pool, ns.org)
        return await create_agent(rt.pool, org_id, name=ns.name, intent=intent, actor="cli")

    return await _with_runtime(run)


async def _key_create(ns: argparse.Namespace) -> Any:
    async def run(rt: Any) -> Any:
        org_id = await org_id_for(rt.pool, ns.org)
        agent = await find_agent(rt.pool, org_id, ns.agent)
        return await create_api_key(rt.pool, org_id, agent.id, actor="cli")

    return await _with_runtime(run)


async def _credential_set(ns: argparse.Namespace) -> Any:
    secret = ns.secret

    async def run(rt: Any) -> Any:
        org_id = await org_id_for(rt.pool, ns.org)
        return await store_credential(
            rt.pool,
            rt.vault,
            org_id=org_id,
            connector=ns.connector,
            secret=secret,
            base_url=ns.base_url,
            allow_insecure_urls=rt.settings.allow_insecure_connector_urls,
            actor="cli",
        )

    return await _with_runtime(run)


async def _audit_list(ns: argparse.Namespace) -> Any:
    async def run(rt: Any) -> Any:
        org_id = await org_id_for(rt.pool, ns.org)
        return await list_events(rt.pool, org_id, after_seq=ns.after, limit=ns.limit)

    return await _with_runtime(run)


async def _db_migrate(_: argparse.Namespace) -> Any:
    settings = load_settings()
    url = settings.admin_database_url or settings.database_url
    applied = await asyncio.to_thread(migrate, url)
    if settings.app_db_password:
        await asyncio.to_thread(set_app_password, url, settings.app_db_password)
    return {"applied": applied}


def _serve(ns: argparse.Namespace) -> None:
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


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="arx", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(sync=_serve)

    db = sub.add_parser("db", help="database administration").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser(
        "migrate",
        help="apply pending schema migrations (ARX_ADMIN_DATABASE_URL, else ARX_DATABASE_URL)",
    ).set_defaults(run=_db_migrate)

    org = sub.add_parser("org", help="organizations").add_subparsers(
        dest="org_command", required=True
    )
    oc = org.add_parser("create", help="create an org")
    oc.add_argument("--slug", required=True, help="lower-case id; names the org's policy bundle")
    oc.add_argument("--name", required=True)
    oc.set_defaults(run=_org_create)

    agent = sub.add_parser("agent", help="agents").add_subparsers(
        dest="agent_command", required=True
    )
    ac = agent.add_parser("create", help="create an agent with its intent manifest")
    ac.add_argument("--org", required=True, help="org id or slug")
    ac.add_argument("--name", required=True)
    ac.add_argument("--purpose")
    ac.add_argument(
        "--scope",
        action="append",
        metavar="CONNECTOR=OP[,OP...]",
        help="operations the agent declares it needs (globs allowed: hosts:*)",
    )
    ac.add_argument("--intent-file", help="a JSON intent manifest {purpose, scope}")
    ac.set_defaults(run=_agent_create)

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_command", required=True)
    kc = key.add_parser("create", help="issue an API key for an agent (shown once)")
    kc.add_argument("--org", required=True, help="org id or slug")
    kc.add_argument("--agent", required=True, help="agent name")
    kc.set_defaults(run=_key_create)

    cred = sub.add_parser("credential", help="connector credentials").add_subparsers(
        dest="credential_command", required=True
    )
    cs = cred.add_parser("set", help="store (or rotate) an org's credential for a connector")
    cs.add_argument("--org", required=True, help="org id or slug")
    cs.add_argument("--connector", required=True)
    cs.add_argument("--secret-file", required=True, help="JSON secret file, or - for stdin")
    cs.add_argument("--base-url", help="the tool's API base URL (default: the vendor's)")
    cs.set_defaults(run=_credential_set)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    al = audit.add_parser("list", help="list an org's audit events in order")
    al.add_argument("--org", required=True, help="org id or slug")
    al.add_argument("--after", type=int, default=0, help="only events with seq > AFTER")
    al.add_argument("--limit", type=int, default=100)
    al.set_defaults(run=_audit_list)

    demo = sub.add_parser("demo", help="start the whole system locally and run the demo agent")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--no-wait", action="store_true", help="stop everything after the demo")
    demo.add_argument("--home", type=Path, help="state directory (default: .arx in the checkout)")
    demo.set_defaults(sync=_demo)
    return p


def _demo(ns: argparse.Namespace) -> None:
    from arx.devstack.demo import run_demo  # noqa: PLC0415  (dev-only; keeps `arx` lean)

    run_demo(port=ns.port, wait=not ns.no_wait, home=ns.home)


def _read_inputs(ns: argparse.Namespace) -> None:
    """Read files named on the command line before any event loop starts."""
    if getattr(ns, "intent_file", None):
        ns.intent = msgspec.json.decode(Path(ns.intent_file).read_bytes(), type=IntentManifest)
    elif hasattr(ns, "intent_file"):
        ns.intent = None
    if getattr(ns, "secret_file", None):
        # From a file or stdin only: a secret given as an argument would land
        # in shell history and in the process table.
        source = ns.secret_file
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        ns.secret = msgspec.json.decode(raw, type=dict[str, Any])


def main(argv: Sequence[str] | None = None) -> int:
    ns = _build_parser().parse_args(argv)
    try:
        _read_inputs(ns)
        if hasattr(ns, "sync"):
            ns.sync(ns)
        else:
            _print(asyncio.run(ns.run(ns)))
    except ARXError as exc:
        return _fail(f"{exc} [{exc.code}]")
    except ConfigError as exc:
        return _fail(f"{exc} [config_error]")
    except OSError as exc:
        return _fail(f"cannot read {exc.filename or 'input'}: {exc.strerror} [io_error]")
    except msgspec.DecodeError as exc:
        # msgspec names the position, never the content (which may be a secret).
        return _fail(f"the input is not valid JSON of the expected shape: {exc} [bad_input]")
    except psycopg.Error as exc:
        return _fail(
            f"the database refused or could not be reached ({type(exc).__name__}; "
            f"SQLSTATE {exc.sqlstate or 'n/a'}) [database_error]"
        )
    return 0


def _fail(message: str) -> int:
    sys.stderr.write(f"arx: error: {message}\n")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
