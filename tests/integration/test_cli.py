"""The ``arx`` console script, run as a user runs it: a subprocess with ``ARX_*``
environment variables, JSON on stdout, one-line errors on stderr.

Admin commands talk to a live API (``arx serve`` on a loopback port, the real
OPA and PostgreSQL) with an admin token; an org provisioned that way must then
govern a real agent's calls, which reach the Falcon sandbox on its own port.
``db migrate`` is an operator command and still talks to PostgreSQL directly.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import pty
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import psycopg
import pytest

from arx.devstack.opa import OpaSidecar
from arx.devstack.ports import LOOPBACK, free_port, is_port_open
from arx.devstack.process import ManagedProcess
from arx.devstack.stack import create_database, drop_database
from tests.fixtures.arx import BOOTSTRAP_TOKEN, FALCON_CLIENT_ID, FALCON_CLIENT_SECRET
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

ARX = Path(sys.executable).with_name("arx")
REPO_ROOT = Path(__file__).resolve().parents[2]
EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
SECRET_JSON = msgspec.json.encode(
    {"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET}
)
OWNER_PASSWORD = "correct horse battery staple 42"
# Bootstrap of `example`: it has a policy bundle in bundles/, so the API can decide for it.
BOOTSTRAP_ARGS = ("bootstrap", "--org", "example", "--name", "Example Org",
                  "--owner-email", "owner@example.test")  # fmt: skip


def _env(**arx: str) -> dict[str, str]:
    """The caller's environment without any ARX_* setting, plus ``arx``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARX_")}
    env.update(arx)
    return env


def _ok(proc: subprocess.CompletedProcess[bytes]) -> Any:
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    return msgspec.json.decode(proc.stdout)


def _one_line_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    """Exit 1, nothing on stdout, exactly one line on stderr, no traceback."""
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    assert proc.returncode == 1, (proc.returncode, err)
    assert proc.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("arx: error: "), err
    return lines[0]


@dataclass
class Cli:
    """Runs ``arx`` with a fixed environment and keeps every output, for the secret checks."""

    env: dict[str, str]
    outputs: list[subprocess.CompletedProcess[bytes]]

    async def run(
        self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        assert ARX.exists(), f"the console script is not installed at {ARX}"
        proc = await anyio.run_process(
            [str(ARX), *args], input=stdin or b"", env=dict(env or self.env), check=False
        )
        self.outputs.append(proc)
        return proc

    async def ok(self, *args: str, stdin: bytes | None = None) -> Any:
        return _ok(await self.run(*args, stdin=stdin))

    async def error(self, *args: str, extra_env: Mapping[str, str] | None = None) -> str:
        """The one error line of a failing run, with ``extra_env`` over the usual environment."""
        return _one_line_error(await self.run(*args, env={**self.env, **(extra_env or {})}))

    def printed(self, secret: str) -> int:
        """How many invocations printed ``secret`` anywhere."""
        return sum(secret.encode() in p.stdout + p.stderr for p in self.outputs)


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def _service(
    module_args: list[str],
    *,
    name: str,
    port: int,
    log: Path,
    probe: str | None,
    env: dict[str, str],
) -> ManagedProcess:
    """``python -m module_args``, ready when ``probe`` answers 200 (or the port is open)."""
    return ManagedProcess(
        [sys.executable, "-m", *module_args],
        name=name,
        log_path=log,
        ready=(lambda: _http_ok(f"http://{LOOPBACK}:{port}{probe}"))
        if probe
        else (lambda: is_port_open(port)),
        env=_env(**env),
        cwd=REPO_ROOT,
    )


@dataclass(frozen=True)
class Live:
    api_url: str
    falcon_url: str


def _api(db: Database, opa: OpaSidecar, tmp_path: Path) -> tuple[ManagedProcess, str]:
    """``arx serve`` on a free loopback port, as an operator runs it."""
    port = free_port()
    api = _service(
        ["arx.cli.main", "serve", "--port", str(port)],
        name="ARX API",
        port=port,
        log=tmp_path / "api.log",
        probe="/health",
        env={
            "ARX_DATABASE_URL": db.app_url,
            "ARX_CONTROL_DATABASE_URL": db.control_url,
            "ARX_OPA_URL": opa.url,
            "ARX_OPA_TOKEN": opa.token,
            "ARX_KEK": base64.b64encode(os.urandom(32)).decode(),
            "ARX_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
            "ARX_ALLOW_INSECURE_CONNECTOR_URLS": "1",
            "ARX_SANDBOX_ORGS": "*",
            "ARX_SPOOL_DIR": str(tmp_path / "spool"),
            "ARX_DB_POOL_MIN": "1",
            "ARX_DB_POOL_MAX": "4",
            # Longer than any test: a switch or a revocation that shows at once
            # came through the server's notification, not a lapsed cache.
            "ARX_AUTH_CACHE_SECONDS": "60",
        },
    )
    return api, f"http://{LOOPBACK}:{port}"


def _falcon(tmp_path: Path) -> tuple[ManagedProcess, str]:
    """The Falcon sandbox on its own port: the live API's connector calls it over HTTP."""
    port = free_port()
    sandbox = _service(
        ["uvicorn", "--factory", "arx.sandbox.falcon:app_from_env",
         "--host", LOOPBACK, "--port", str(port), "--log-level", "warning"],
        name="Falcon sandbox",
        port=port,
        log=tmp_path / "falcon.log",
        probe=None,
        env={
            "ARX_SANDBOX_FALCON_CLIENT_ID": FALCON_CLIENT_ID,
            "ARX_SANDBOX_FALCON_CLIENT_SECRET": FALCON_CLIENT_SECRET,
        },
    )  # fmt: skip
    return sandbox, f"http://{LOOPBACK}:{port}"


@pytest.fixture
def api_url(test_db: Database, opa_sidecar: OpaSidecar, tmp_path: Path) -> Iterator[str]:
    api, url = _api(test_db, opa_sidecar, tmp_path)
    with api:
        yield url


@pytest.fixture
def live(test_db: Database, opa_sidecar: OpaSidecar, tmp_path: Path) -> Iterator[Live]:
    """The API and the Falcon sandbox, started side by side (each is mostly start-up)."""
    (api, api_url), (sandbox, falcon_url) = _api(test_db, opa_sidecar, tmp_path), _falcon(tmp_path)
    try:
        with ThreadPoolExecutor(2) as pool:
            started = [pool.submit(proc.start) for proc in (api, sandbox)]
        for future in started:
            future.result()
        yield Live(api_url=api_url, falcon_url=falcon_url)
    finally:
        api.stop()
        sandbox.stop()


async def _bootstrap(cli: Cli, *extra: str, stdin: bytes | None = None) -> Any:
    proc = await cli.run(
        *BOOTSTRAP_ARGS,
        *extra,
        stdin=stdin,
        env={**cli.env, "ARX_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN},
    )
    return _ok(proc)


async def _execute_status(
    http: httpx.AsyncClient, api_key: str, expected: int, *, within: float = 0.5
) -> httpx.Response:
    """Execute until the answer has ``expected`` status, for at most ``within`` seconds.

    A switch takes effect through a NOTIFY the server receives a moment after
    the change commits; ``within`` is far below the API's auth cache (60 s),
    so passing still proves the notification, never a lapsed cache.
    """
    headers = {"authorization": f"Bearer {api_key}"}
    deadline = time.monotonic() + within
    for _ in range(1000):
        resp = await http.post(EXECUTE, json=SEARCH, headers=headers)
        if resp.status_code == expected or time.monotonic() > deadline:
            break
        await anyio.sleep(0.02)
    assert resp.status_code == expected, resp.text
    return resp


async def test_operator_provisions_and_governs_an_agent_through_the_cli(live: Live) -> None:
    api_url, falcon_url = live.api_url, live.falcon_url
    cli = Cli(env=_env(ARX_URL=api_url), outputs=[])

    founded = await _bootstrap(cli, "--owner-password-file", "-", stdin=OWNER_PASSWORD.encode())
    assert (founded["org"]["slug"], founded["owner"]["email"]) == ("example", "owner@example.test")
    owner_token = founded["owner_token"]["token"]
    token_id = founded["owner_token"]["token_id"]
    assert owner_token.startswith(f"arxadm_{token_id}_")
    again = await cli.error(*BOOTSTRAP_ARGS, extra_env={"ARX_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN})
    assert again.endswith("[bootstrap_closed]")

    cli.env["ARX_TOKEN"] = owner_token
    me = await cli.ok("whoami")
    assert (me["kind"], me["id"]) == ("token", token_id)
    assert [(o["slug"], o["roles"]) for o in me["orgs"]] == [("example", ["owner"])]

    agent = await cli.ok(
        "agent", "create", "--name", "triage-bot", "--purpose", "look up hosts",
        "--scope", "crowdstrike=hosts:search,hosts:get",
    )  # fmt: skip
    assert agent["intent"] == {
        "purpose": "look up hosts",
        "scope": {"crowdstrike": ["hosts:search", "hosts:get"]},
    }
    assert agent["disabled"] is False
    # --org by slug and by id reach the same org as the token's only one.
    key = await cli.ok("key", "create", "--org", "example", "--agent", "triage-bot")
    assert key["api_key"].startswith(f"arx_{key['key_id']}_")
    cred = await cli.ok(
        "credential", "set", "--org", founded["org"]["id"], "--connector", "crowdstrike",
        "--secret-file", "-", "--base-url", falcon_url,
        stdin=SECRET_JSON,
    )  # fmt: skip
    assert (cred["connector"], cred["version"], cred["base_url"]) == ("crowdstrike", 1, falcon_url)

    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        permitted = await _execute_status(http, key["api_key"], 200)
        assert permitted.json()["verdict"] == "PERMIT"
        assert permitted.json()["result"]["resources"], "the sandbox answered through ARX"

        off = await cli.ok("agent", "disable", "triage-bot", "--reason", "prompt injection")
        assert (off["disabled"], off["disabled_reason"]) == (True, "prompt injection")
        refused = await _execute_status(http, key["api_key"], 403)
        assert refused.json()["code"] == "agent_disabled"
        listed = await cli.ok("agent", "list")
        assert [(a["name"], a["disabled"]) for a in listed] == [("triage-bot", True)]
        assert (await cli.ok("agent", "show", "triage-bot"))["disabled"] is True

        on = await cli.ok("agent", "enable", "triage-bot")
        assert on["disabled"] is False
        await _execute_status(http, key["api_key"], 200)

        revoked = await cli.ok("key", "revoke", "--agent", "triage-bot", key["key_id"])
        assert (revoked["key_id"], revoked["status"]) == (key["key_id"], "revoked")
        gone = await _execute_status(http, key["api_key"], 401)
        assert gone.json()["code"] == "invalid_api_key"

    listed = await cli.ok("audit", "list", "--limit", "1000")  # JSON: stdout is not a terminal
    events = listed["events"][::-1]  # newest first
    owner = f"token:{token_id} (owner token)"
    assert [(e["action"], e["actor"]) for e in events if e["kind"] == "admin"] == [
        ("org.created", "bootstrap"),
        ("member.added", "bootstrap"),
        ("admin_token.created", "bootstrap"),
        ("agent.created", owner),
        ("api_key.created", owner),
        ("credential.stored", owner),
        ("agent.disabled", owner),
        ("agent.enabled", owner),
        ("api_key.revoked", owner),
    ]
    assert {"decision", "result"} <= {e["kind"] for e in events}
    first = await cli.ok("audit", "list", "--limit", "2", "--kind", "admin")
    admins = [e for e in events if e["kind"] == "admin"]
    assert [e["seq"] for e in first["events"]] == [e["seq"] for e in admins[:-3:-1]]
    page = await cli.ok("audit", "list", "--kind", "admin", "--cursor", first["next_cursor"])
    assert [e["seq"] for e in page["events"]] == [e["seq"] for e in admins[-3::-1]]
    assert page["next_cursor"] is None

    # Each secret is printed once, by the command that made it, and never otherwise
    # ("arx_<id>_<secret>": the id alone is not a secret, and is printed often).
    api_key_secret = key["api_key"].split("_", 2)[2]
    token_secret = owner_token.split("_", 2)[2]
    for secret in (api_key_secret, token_secret):
        assert cli.printed(secret) == 1
    for secret in (FALCON_CLIENT_SECRET, OWNER_PASSWORD, BOOTSTRAP_TOKEN):
        assert cli.printed(secret) == 0


async def _switches_and_allowlists(cli: Cli, org_id: str) -> None:
    shown = await cli.ok("org", "show", "--org", "example")
    assert (shown["id"], shown["agents_disabled"]) == (org_id, False)
    off = await cli.ok("org", "disable", "--reason", "incident 42")
    assert (off["agents_disabled"], off["agents_disabled_reason"]) == (True, "incident 42")
    assert (await cli.ok("org", "enable", "--org", org_id))["agents_disabled"] is False
    lists = await cli.ok("org", "allowlist", "--agent", "10.0.0.0/8", "192.0.2.0/24",
                         "--admin", "127.0.0.0/8")  # fmt: skip
    assert (lists["agent_allowlist"], lists["admin_allowlist"]) == (
        ["10.0.0.0/8", "192.0.2.0/24"],
        ["127.0.0.0/8"],
    )
    # One list cleared, the other kept: the CLI sends back what it does not change.
    kept = await cli.ok("org", "allowlist", "--clear-agent")
    assert (kept["agent_allowlist"], kept["admin_allowlist"]) == (None, ["127.0.0.0/8"])


async def _people(cli: Cli) -> None:
    added = await cli.ok("member", "add", "Ana@Example.test", "--role", "admin",
                         "--role", "auditor", "--display-name", "Ana")  # fmt: skip
    assert sorted(added["roles"]) == ["admin", "auditor"]
    changed = await cli.ok(
        "member", "set", "ana@example.test", "--role", "reviewer", "--deactivate"
    )
    assert (changed["roles"], changed["active"]) == (["reviewer"], False)
    emails = sorted(m["email"].lower() for m in await cli.ok("member", "list"))
    assert emails == ["ana@example.test", "owner@example.test"]


async def _tokens(cli: Cli) -> str:
    """Returns the auditor token the chain created (to check it was printed once)."""
    auditor = await cli.ok("token", "create", "read-only", "--role", "auditor",
                           "--expires-in", "3600")  # fmt: skip
    assert auditor["roles"] == ["auditor"]
    as_auditor = {**cli.env, "ARX_TOKEN": auditor["token"]}
    denied = _one_line_error(await cli.run("agent", "create", "--name", "x", env=as_auditor))
    assert denied.endswith("[role_required]")
    rotated = await cli.ok("token", "rotate", auditor["token_id"], "--overlap", "0")
    assert rotated["old_token_id"] == auditor["token_id"]
    successor = rotated["new"]["token_id"]
    assert {t["token_id"]: t["status"] for t in await cli.ok("token", "list")}[successor] == (
        "active"
    )
    assert (await cli.ok("token", "revoke", successor))["status"] == "revoked"
    for old in (auditor["token"], rotated["new"]["token"]):
        stale = _one_line_error(await cli.run("whoami", env={**cli.env, "ARX_TOKEN": old}))
        assert stale.endswith("[invalid_admin_token]")
    return str(auditor["token"])


async def _keys(cli: Cli) -> str:
    """Returns the first key the chain issued (to check it was printed once)."""
    intent = {"purpose": "contain hosts", "scope": {"crowdstrike": ["hosts:*"]}}
    bot = await cli.ok("agent", "create", "--name", "bot", "--intent-file", "-",
                       stdin=msgspec.json.encode(intent))  # fmt: skip
    assert (bot["intent"], bot["disabled"]) == (intent, False)
    first = await cli.ok("key", "create", "--agent", "bot", "--name", "laptop")
    successor = await cli.ok("key", "rotate", "--agent", "bot", first["key_id"], "--overlap", "60")
    assert successor["old_key_id"] == first["key_id"]
    statuses = {k["key_id"]: k["status"] for k in await cli.ok("key", "list", "--agent", "bot")}
    assert statuses == {first["key_id"]: "active", successor["new"]["key_id"]: "active"}
    return str(first["api_key"])


async def _refusals(cli: Cli) -> None:
    bogus = "arxadm_0123456789abcdef_" + secrets.token_urlsafe(16)
    cases = [
        (("agent", "list"), {"ARX_TOKEN": bogus}, "[invalid_admin_token]"),
        # The bootstrap token founds the first org and does nothing else.
        (("agent", "list"), {"ARX_TOKEN": BOOTSTRAP_TOKEN}, "[bootstrap_closed]"),
        (("agent", "show", "nobody"), {}, "no agent named 'nobody' in this org [not_found]"),
        (("member", "set", "nobody@example.test", "--activate"), {}, "[not_found]"),
        (("org", "show", "--org", "no-such-org"), {}, "[not_found]"),
    ]
    for args, env, expected in cases:
        assert expected in await cli.error(*args, extra_env=env), args
    assert cli.printed(bogus) == 0


async def test_org_people_and_tokens_through_the_cli(api_url: str) -> None:
    cli = Cli(env=_env(ARX_URL=api_url), outputs=[])
    founded = await _bootstrap(cli)
    owner_token = founded["owner_token"]["token"]
    cli.env["ARX_TOKEN"] = owner_token
    # Independent stories run side by side: each invocation is mostly start-up.
    made: dict[str, str] = {}

    async def keep(name: str, chain: Awaitable[str]) -> None:
        made[name] = await chain

    async with anyio.create_task_group() as tg:
        tg.start_soon(_switches_and_allowlists, cli, founded["org"]["id"])
        tg.start_soon(_people, cli)
        tg.start_soon(keep, "token", _tokens(cli))
        tg.start_soon(keep, "key", _keys(cli))
        tg.start_soon(_refusals, cli)

    # The credential from stdin instead of the environment.
    from_stdin = Cli(env=_env(ARX_URL=api_url), outputs=cli.outputs)
    me = await from_stdin.ok("whoami", "--token-file", "-", stdin=owner_token.encode() + b"\n")
    assert me["id"] == founded["owner_token"]["token_id"]
    # The last change: an admin allowlist without this machine locks the CLI out.
    await cli.ok("org", "allowlist", "--admin", "192.0.2.0/24")
    assert (await cli.error("org", "show")).endswith("[address_not_allowed]")

    for secret in (owner_token, made["token"], made["key"]):
        assert cli.printed(secret.split("_", 2)[2]) == 1
    assert cli.printed(BOOTSTRAP_TOKEN) == 0


def _on_a_terminal(args: Sequence[str], env: Mapping[str, str]) -> str:
    """What ``arx`` prints when its stdout is a terminal (a pseudo-terminal here),
    read as it comes so that a long output cannot fill the terminal and stall it."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(ARX), *args], stdout=follower, stderr=subprocess.PIPE, env=dict(env)
    )
    os.close(follower)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed its end of the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    return out.decode().replace("\r\n", "\n")


async def test_reading_exporting_and_tailing_the_trail_through_the_cli(
    api_url: str, tmp_path: Path
) -> None:
    cli = Cli(env=_env(ARX_URL=api_url), outputs=[])
    founded = await _bootstrap(cli)
    cli.env["ARX_TOKEN"] = founded["owner_token"]["token"]
    intent = tmp_path / "intent.json"
    intent.write_text('{"purpose": "triage", "scope": {"crowdstrike": ["hosts:search"]}}')
    for name in ("bot-a", "bot-b"):
        await cli.ok("agent", "create", "--name", name, "--intent-file", str(intent))

    # Scripts get JSON (stdout is not a terminal here); people get a table.
    page = await cli.ok("audit", "list", "--kind", "admin")
    actions = [e["action"] for e in page["events"]]
    assert actions[:2] == ["agent.created", "agent.created"]
    table = _on_a_terminal(["audit", "list", "--limit", "3"], cli.env)
    lines = table.splitlines()
    assert lines[0].split() == ["seq", "time", "(UTC)", "kind", "agent", "/", "actor", "what",
                                "verdict", "/", "outcome", "policy"]  # fmt: skip
    assert "agent.created" in lines[1]
    assert lines[-1].startswith("(more: add --cursor ")
    assert "{" not in table

    # Tail resumes from its cursor file: everything once, then only what is new.
    cursor = tmp_path / "cursor"

    async def tail() -> list[dict[str, Any]]:
        proc = await cli.run("audit", "tail", "--cursor-file", str(cursor))
        assert proc.returncode == 0, proc.stderr.decode()
        return [msgspec.json.decode(line) for line in proc.stdout.splitlines()]

    everything = (await cli.ok("audit", "list", "--limit", "1000"))["events"]
    seen: list[dict[str, Any]] = []
    for _ in range(100):  # the sealer chains a moment after the commit
        seen += await tail()
        if len(seen) == len(everything):
            break
        await anyio.sleep(0.1)
    assert [e["chain"]["org_seq"] for e in seen] == list(range(1, len(everything) + 1))
    assert {e["id"] for e in seen} == {e["id"] for e in everything}
    assert cursor.read_text().strip() == str(len(everything))
    await cli.ok("agent", "create", "--name", "bot-c", "--intent-file", str(intent))
    new: list[dict[str, Any]] = []
    for _ in range(100):
        new += await tail()
        if new:
            break
        await anyio.sleep(0.1)
    assert [e["action"] for e in new] == ["agent.created"]
    assert new[0]["chain"]["org_seq"] == len(everything) + 1

    # Exports: to a file (complete or absent), or to stdout.
    out = tmp_path / "trail.csv"
    done = await cli.ok("audit", "export", "--format", "csv", "--output", str(out))
    assert (done["output"], done["format"]) == (str(out), "csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(everything) + 1
    assert rows[-1]["action"] == "agent.created"
    proc = await cli.run("audit", "export", "--kind", "admin", "--since", "1h")
    assert proc.returncode == 0, proc.stderr.decode()
    exported = [msgspec.json.decode(line) for line in proc.stdout.splitlines()]
    assert [e["seq"] for e in exported] == sorted(e["seq"] for e in exported)
    assert exported[-1]["action"] == "agent.created"

    report = await cli.ok("audit", "verify")
    assert (report["ok"], report["chained"]) == (True, len(everything) + 1)
    shown = await cli.ok("audit", "show", new[0]["id"])
    assert shown["event"]["chain"] == new[0]["chain"]
    assert "[not_found]" in await cli.error("audit", "show", "00000000-0000-0000-0000-000000000000")


async def test_cli_errors_without_a_server_are_one_line_with_a_code() -> None:
    """Refused before anything is sent, or because nothing answers."""
    down = f"http://{LOOPBACK}:{free_port()}"
    cli = Cli(env=_env(ARX_URL=down, ARX_TOKEN="arxadm_0123456789abcdef_x"), outputs=[])
    malformed_secret = b'{"client_secret": "' + FALCON_CLIENT_SECRET.encode() + b'"'
    no_token = _env(ARX_URL=down)
    cases: list[tuple[list[str], dict[str, str], bytes | None, str]] = [
        (["agent", "list"], cli.env, None, f"cannot reach the ARX API at {down}"),
        (["whoami", "--url", down + "/"], cli.env, None, "[api_unreachable]"),
        (list(BOOTSTRAP_ARGS), no_token, None, "set ARX_BOOTSTRAP_TOKEN or pass --token-file"),
        (["agent", "list"], no_token, None, "[no_credential]"),
        (["agent", "list"], {**cli.env, "ARX_URL": "ftp://example.test"}, None, "[config_error]"),
        (["agent", "list", "--token-file", "/nonexistent/token"], no_token, None, "[io_error]"),
        (["whoami"], {**cli.env, "ARX_TOKEN": "two words"}, None, "[bad_credential]"),
        (
            ["agent", "create", "--name", "x", "--scope", "crowdstrike"],
            cli.env,
            None,
            "--scope expects CONNECTOR=OP[,OP...], got 'crowdstrike' [bad_input]",
        ),
        (
            ["credential", "set", "--connector", "crowdstrike", "--secret-file", "-"],
            cli.env,
            malformed_secret,
            "the secret is not a JSON object",
        ),
        (
            ["credential", "set", "--connector", "crowdstrike", "--secret-file", "-",
             "--token-file", "-"],
            no_token,
            malformed_secret,
            "only one input can come from stdin (-) [bad_input]",
        ),
        (
            [*BOOTSTRAP_ARGS, "--owner-password-file", "-"],
            {**no_token, "ARX_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN},
            b"short\n",
            "owner_password` [invalid_field]",
        ),
    ]  # fmt: skip
    procs = await _arx_all(cli, [(args, env, stdin) for args, env, stdin, _ in cases])
    for (args, *_, expected), proc in zip(cases, procs, strict=True):
        assert expected in _one_line_error(proc), args
    for secret in (FALCON_CLIENT_SECRET, BOOTSTRAP_TOKEN):
        assert cli.printed(secret) == 0


async def _arx_all(
    cli: Cli, runs: Sequence[tuple[Sequence[str], Mapping[str, str], bytes | None]]
) -> list[subprocess.CompletedProcess[bytes]]:
    """Independent invocations, run concurrently (each is mostly start-up time)."""
    results: list[subprocess.CompletedProcess[bytes] | None] = [None] * len(runs)

    async def one(i: int) -> None:
        args, env, stdin = runs[i]
        results[i] = await cli.run(*args, stdin=stdin, env=env)

    async with anyio.create_task_group() as tg:
        for i in range(len(runs)):
            tg.start_soon(one, i)
    return [r for r in results if r is not None]


def _shipped_migrations() -> list[str]:
    folder = resources.files("arx.db").joinpath("migrations")
    return sorted(p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql"))


async def test_db_migrate_is_idempotent_and_migrates_a_fresh_database(
    test_db: Database, pg_admin_url: str
) -> None:
    cli = Cli(env={}, outputs=[])
    migrated = _env(ARX_DATABASE_URL=test_db.app_url, ARX_ADMIN_DATABASE_URL=test_db.admin_url)
    assert _ok(await cli.run("db", "migrate", env=migrated)) == {"applied": []}

    name = f"arx_cli_fresh_{secrets.token_hex(4)}"
    url = create_database(pg_admin_url, name)
    try:
        fresh = _env(ARX_DATABASE_URL=url)
        applied = _ok(await cli.run("db", "migrate", env=fresh))["applied"]
        assert applied[0] == "0001_initial"
        assert applied == _shipped_migrations()
        assert _ok(await cli.run("db", "migrate", env=fresh)) == {"applied": []}
        with psycopg.connect(url) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'arx'"
                ).fetchall()
            }
        assert {"orgs", "agents", "api_keys", "credentials", "audit_events"} <= tables
    finally:
        drop_database(pg_admin_url, name)


async def test_db_migrate_failures_are_one_line_errors(test_db: Database) -> None:
    cli = Cli(env={}, outputs=[])
    unreachable = _env(ARX_DATABASE_URL=f"postgresql://postgres@{LOOPBACK}:{free_port()}/arx")
    # Without ARX_ADMIN_DATABASE_URL the app role cannot migrate: say so, cleanly.
    app_only = _env(ARX_DATABASE_URL=test_db.app_url)
    for env in (unreachable, app_only, _env()):
        assert _one_line_error(await cli.run("db", "migrate", env=env))
