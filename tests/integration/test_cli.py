"""The ``arx`` console script, run as a user runs it: a subprocess with ``ARX_*``
environment variables, JSON on stdout, one-line errors on stderr.

An org provisioned with the CLI (as the app role, against the test
database) must then work through the in-process API sharing that database
and the same KEK.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import psycopg
import pytest

from arx.config import Settings
from arx.devstack.stack import create_database, drop_database
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import FALCON_CLIENT_ID, FALCON_CLIENT_SECRET, FALCON_URL
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

ARX = Path(sys.executable).with_name("arx")
EXECUTE = "/v1/sdk/execute"
SECRET_JSON = msgspec.json.encode(
    {"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET}
)


def _env(**arx: str) -> dict[str, str]:
    """The caller's environment without any ARX_* setting, plus ``arx``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARX_")}
    env.update(arx)
    return env


async def _arx(
    args: Sequence[str], env: Mapping[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    assert ARX.exists(), f"the console script is not installed at {ARX}"
    return await anyio.run_process(
        [str(ARX), *args], input=stdin or b"", env=dict(env), check=False
    )


def _ok(proc: subprocess.CompletedProcess[bytes]) -> Any:
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    return msgspec.json.decode(proc.stdout)


def _one_line_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    """Exit 1, nothing on stdout, exactly one line on stderr, no traceback."""
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    assert proc.returncode == 1, (proc.returncode, err)
    assert proc.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def app_env(test_db: Database, settings: Settings) -> dict[str, str]:
    """The app role and the same KEK the in-process API uses."""
    return _env(
        ARX_DATABASE_URL=test_db.app_url,
        ARX_KEK=base64.b64encode(settings.kek).decode(),
        ARX_ALLOW_INSECURE_CONNECTOR_URLS="1",
    )


def _shipped_migrations() -> list[str]:
    folder = resources.files("arx.db").joinpath("migrations")
    return sorted(p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_db_migrate_is_idempotent_and_migrates_a_fresh_database(
    test_db: Database, pg_admin_url: str
) -> None:
    migrated = _env(ARX_DATABASE_URL=test_db.app_url, ARX_ADMIN_DATABASE_URL=test_db.admin_url)
    assert _ok(await _arx(["db", "migrate"], migrated)) == {"applied": []}

    name = f"arx_cli_fresh_{secrets.token_hex(4)}"
    url = create_database(pg_admin_url, name)
    try:
        fresh = _env(ARX_DATABASE_URL=url)
        applied = _ok(await _arx(["db", "migrate"], fresh))["applied"]
        assert applied[0] == "0001_initial"
        assert applied == _shipped_migrations()
        assert _ok(await _arx(["db", "migrate"], fresh)) == {"applied": []}
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


async def test_provision_with_the_cli_then_execute_through_the_api(
    app_env: dict[str, str], client: httpx.AsyncClient, falcon: FalconState, settings: Settings
) -> None:
    outputs: list[subprocess.CompletedProcess[bytes]] = []

    async def arx(*args: str, stdin: bytes | None = None) -> Any:
        proc = await _arx(args, app_env, stdin)
        outputs.append(proc)
        return _ok(proc)

    # `example` has a policy bundle in bundles/, so the API can decide for it.
    org = await arx("org", "create", "--slug", "example", "--name", "Example Org")
    assert (org["slug"], org["name"]) == ("example", "Example Org")
    agent = await arx(
        "agent", "create", "--org", "example", "--name", "triage-bot",
        "--purpose", "look up hosts",
        "--scope", "crowdstrike=hosts:search,hosts:get",
    )  # fmt: skip
    assert agent["org_id"] == org["id"]
    assert agent["intent"] == {
        "purpose": "look up hosts",
        "scope": {"crowdstrike": ["hosts:search", "hosts:get"]},
    }
    key = await arx("key", "create", "--org", "example", "--agent", "triage-bot")
    assert key["agent_id"] == agent["id"]
    assert key["api_key"].startswith(f"arx_{key['key_id']}_")
    cred = await arx(
        "credential", "set", "--org", org["id"], "--connector", "crowdstrike",
        "--secret-file", "-", "--base-url", FALCON_URL,
        stdin=SECRET_JSON,
    )  # fmt: skip
    assert (cred["connector"], cred["version"], cred["base_url"]) == ("crowdstrike", 1, FALCON_URL)

    # The CLI's key authenticates against the API, and the CLI-stored
    # credential (sealed under the shared KEK) opens for the connector.
    resp = await client.post(
        EXECUTE,
        json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
        headers={"authorization": f"Bearer {key['api_key']}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["verdict"] == "PERMIT"
    assert [r.auth_valid for r in falcon.calls("/oauth2/token")] == [True]

    events = await arx("audit", "list", "--org", "example")
    assert [(e["kind"], e.get("action"), e.get("actor")) for e in events] == [
        ("admin", "org.created", "cli"),
        ("admin", "agent.created", "cli"),
        ("admin", "api_key.created", "cli"),
        ("admin", "credential.stored", "cli"),
        ("decision", None, None),
        ("result", None, None),
    ]
    assert events[4]["id"] == resp.json()["event_id"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    page = await arx("audit", "list", "--org", org["id"], "--after", str(seqs[0]), "--limit", "2")
    assert [e["seq"] for e in page] == seqs[1:3]

    kek_b64 = base64.b64encode(settings.kek).decode()
    for proc in outputs:
        text = (proc.stdout + proc.stderr).decode()
        assert FALCON_CLIENT_SECRET not in text
        assert kek_b64 not in text
    key_printed = [p for p in outputs if key["api_key"].encode() in p.stdout + p.stderr]
    assert len(key_printed) == 1, "the API key is printed once, when it is created"


async def _arx_all(
    runs: Sequence[tuple[Sequence[str], Mapping[str, str], bytes | None]],
) -> list[subprocess.CompletedProcess[bytes]]:
    """Independent invocations, run concurrently (each is mostly start-up time)."""
    results: list[subprocess.CompletedProcess[bytes] | None] = [None] * len(runs)

    async def one(i: int) -> None:
        results[i] = await _arx(*runs[i])

    async with anyio.create_task_group() as tg:
        for i in range(len(runs)):
            tg.start_soon(one, i)
    return [r for r in results if r is not None]


async def test_cli_errors_are_one_line_without_traceback(app_env: dict[str, str]) -> None:
    not_found = "arx: error: no org with slug 'no-such-org' [not_found]"
    cases: list[tuple[list[str], dict[str, str], bytes | None, str]] = [
        (["key", "create", "--org", "no-such-org", "--agent", "x"], app_env, None, not_found),
        (["audit", "list", "--org", "no-such-org"], app_env, None, not_found),
        (
            ["agent", "create", "--org", "no-such-org", "--name", "x", "--scope", "crowdstrike=*"],
            app_env,
            None,
            not_found,
        ),
        (
            [
                "credential",
                "set",
                "--org",
                "no-such-org",
                "--connector",
                "crowdstrike",
                "--secret-file",
                "-",
            ],
            app_env,
            SECRET_JSON,
            not_found,
        ),
        (
            ["org", "create", "--slug", "x", "--name", "x"],
            _env(),
            None,
            "ARX_DATABASE_URL is not set",
        ),
        (
            ["org", "create", "--slug", "x", "--name", "x"],
            {**app_env, "ARX_KEK": "not-base64-of-32-bytes"},
            None,
            "ARX_KEK must be base64 of 32 random bytes",
        ),
        (
            ["agent", "create", "--org", "x", "--name", "x", "--scope", "crowdstrike"],
            app_env,
            None,
            "--scope expects CONNECTOR=OP[,OP...], got 'crowdstrike'",
        ),
    ]
    procs = await _arx_all([(args, env, stdin) for args, env, stdin, _ in cases])
    for (args, *_, expected), proc in zip(cases, procs, strict=True):
        line = _one_line_error(proc)
        exact = expected.startswith("arx: ")
        assert (line == expected) if exact else (expected in line), args
        assert FALCON_CLIENT_SECRET not in line


@pytest.mark.parametrize(
    ("secret_file", "stdin"),
    [("-", b'{"client_id": "abc", "client_secret": "' + FALCON_CLIENT_SECRET.encode() + b'"'),
     ("/nonexistent/secret.json", b"")],
    ids=["malformed-json-on-stdin", "missing-file"],
)  # fmt: skip
async def test_cli_unreadable_secret_is_a_one_line_error(secret_file: str, stdin: bytes) -> None:
    env = _env(ARX_DATABASE_URL=f"postgresql://arx_app@127.0.0.1:{_closed_port()}/arx")
    proc = await _arx(
        ["credential", "set", "--org", "x", "--connector", "crowdstrike",
         "--secret-file", secret_file],
        env,
        stdin,
    )  # fmt: skip
    line = _one_line_error(proc)
    assert line.startswith("arx: error:")
    assert FALCON_CLIENT_SECRET not in line


async def test_agent_create_without_scope_declares_an_empty_intent(
    app_env: dict[str, str],
) -> None:
    """``--scope`` and ``--intent-file`` are optional: the API defaults the
    intent to an empty manifest, and so must the CLI."""
    _ok(await _arx(["org", "create", "--slug", "plain", "--name", "Plain"], app_env))
    proc = await _arx(["agent", "create", "--org", "plain", "--name", "plain-bot"], app_env)
    assert _ok(proc)["intent"] == {"purpose": "", "scope": {}}


async def test_cli_migrate_of_unreachable_database_is_a_one_line_error() -> None:
    unreachable = _env(ARX_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{_closed_port()}/arx")
    assert _one_line_error(await _arx(["db", "migrate"], unreachable)).startswith("arx: error:")


async def test_cli_migrate_as_the_app_role_is_a_one_line_error(test_db: Database) -> None:
    # Without ARX_ADMIN_DATABASE_URL the app role cannot migrate: say so, cleanly.
    app_only = _env(ARX_DATABASE_URL=test_db.app_url)
    assert _one_line_error(await _arx(["db", "migrate"], app_only)).startswith("arx: error:")
