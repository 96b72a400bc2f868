"""``arx demo``: the whole system on one machine, and an agent that uses it.

Starts (or reuses) a project-local PostgreSQL cluster, builds the policy
bundles and starts the OPA sidecar, the Falcon sandbox and the ARX API, seeds
the example org in a fresh ``arx_demo`` database, then runs
``examples/demo_agent.py`` (a real SDK client in its own process) for a
PERMIT, a DENY and an ESCALATE. The escalated call waits for a reviewer: the
demo prints the review page and the local reviewer's sign-in, and the call
completes when a person approves it (with ``--no-wait`` the demo approves it
itself on the same page, then stops). Otherwise everything keeps running until
Ctrl-C.

State lives in ``.arx/`` (or ``--home``): the cluster, the generated KEK,
admin token and passwords (0600 files), logs, and ``demo.env`` for the CLI.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from arx.audit.checkpoints import ensure_key as ensure_audit_key
from arx.devstack import reviewer
from arx.devstack.opa import BundleService, OpaSidecar, opa_binary
from arx.devstack.ports import LOOPBACK, free_port, is_port_open
from arx.devstack.postgres import LocalPostgres, check_traversable
from arx.devstack.process import DevstackError, ManagedProcess
from arx.devstack.seed import SANDBOX_CLIENT_ID, Seeded, publish_policy, seed_over_api
from arx.devstack.stack import Logins, create_database, drop_database, migrate_and_grant
from arx.policy.lifecycle import signing

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_DB = "arx_demo"


def _secret_file(path: Path, make: str) -> str:
    """Read a 0600 file, creating it with ``make`` the first time."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make)
    return path.read_text().strip()


def _cluster_dir(home: Path) -> Path:
    """``home/pg`` when the postgres OS user can reach it, else a dir under /var/tmp."""
    preferred = home / "pg"
    try:
        if os.geteuid() == 0:
            check_traversable(home, "postgres")
        return preferred
    except (DevstackError, KeyError):
        digest = hashlib.sha256(str(home).encode()).hexdigest()[:10]
        fallback = Path("/var/tmp") / f"arx-{digest}" / "pg"  # noqa: S108 (per-checkout name)
        fallback.parent.mkdir(parents=True, exist_ok=True)
        fallback.parent.chmod(0o755)
        print(f"  (PostgreSQL cannot enter {home}; its cluster lives in {fallback})")
        return fallback


def _http_ok(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    finally:
        conn.close()


def _python_service(
    module_args: list[str],
    *,
    name: str,
    log: Path,
    port: int,
    probe: str | None,
    env: dict[str, str],
) -> ManagedProcess:
    return ManagedProcess(
        [sys.executable, "-m", *module_args],
        name=name,
        log_path=log,
        ready=(lambda: _http_ok(port, probe)) if probe else (lambda: is_port_open(port)),
        env={**os.environ, **env},
        cwd=REPO_ROOT,
    )


@contextmanager
def _running(proc: ManagedProcess | OpaSidecar, timeout: float = 30.0) -> Iterator[None]:
    if isinstance(proc, OpaSidecar):
        proc.start()
    else:
        proc.start(timeout=timeout)
    try:
        yield
    finally:
        proc.stop()


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    """Until the API's /health answers 200 (database and policy engine up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _http_ok(port, "/health"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise DevstackError(f"the ARX API on port {port} did not become healthy in {timeout:g} s")


def _pid(proc: ManagedProcess) -> int:
    if proc.pid is None:
        raise DevstackError(f"{proc.name} is not running")
    return proc.pid


@dataclass(frozen=True, slots=True)
class Stack:
    """A running local ARX: where everything is, and the seeded demo keys."""

    base_url: str
    falcon_url: str
    falcon_client_secret: str
    # The Okta/Jira/Splunk/Sentinel sandboxes (their secret: falcon_client_secret).
    sandbox_url: str
    opa_url: str
    opa_token: str  # the sidecar answers nobody else (opa/authz.rego)
    api_keys: dict[str, str]
    env_file: Path
    logs: Path
    # The API's ARX_* environment and the server's superuser URL (both hold
    # secrets; for tools such as bench/).
    api_env: dict[str, str]
    admin_url: str
    # Root process of each service, for tools that read their CPU from /proc.
    pids: dict[str, int]
    # The example org's owner: its admin token (the CLI's), and the local
    # account's password (a fresh one per run, shown once).
    org_id: str
    owner_token: str
    owner_email: str
    owner_password: str

    def __repr__(self) -> str:
        return f"Stack({self.base_url})"


def _seed(
    base: str,
    *,
    bootstrap_token: str,
    owner_password: str,
    falcon_url: str,
    sandbox_secret: str,
    sandbox_url: str,
) -> Seeded:
    seeded = seed_over_api(
        base,
        bootstrap_token=bootstrap_token,
        owner_password=owner_password,
        falcon_url=falcon_url,
        client_id=SANDBOX_CLIENT_ID,
        client_secret=sandbox_secret,
        sandbox_url=sandbox_url,
        sandbox_secret=sandbox_secret,
    )
    print(
        "- bootstrapped org 'example' through the admin API: its owner, agents "
        "triage-bot and responder-bot, credentials for Falcon, Okta, Jira, Splunk and Sentinel"
    )
    return seeded


def _seed_and_publish(
    sidecar: OpaSidecar,
    base: str,
    *,
    bootstrap_token: str,
    owner_password: str,
    falcon_url: str,
    sandbox_secret: str,
    sandbox_url: str,
) -> Seeded:
    seeded = _seed(
        base,
        bootstrap_token=bootstrap_token,
        owner_password=owner_password,
        falcon_url=falcon_url,
        sandbox_secret=sandbox_secret,
        sandbox_url=sandbox_url,
    )
    revision = publish_policy(
        base,
        seeded.org_id,
        seeded.owner_token,
        REPO_ROOT / "bundles" / "example",
        description="the example org's policy (bundles/example)",
    )
    sidecar.wait_for_revision("example", revision)
    print(f"- pushed and activated bundles/example as {revision}; the sidecar serves it")
    return seeded


def _write_cli_env(home: Path, base: str, token: str) -> Path:
    """What the CLI needs: where the API is and the owner's admin token (0600)."""
    env_file = home / "demo.env"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"export ARX_URL='{base}'\nexport ARX_TOKEN='{token}'\n")
    return env_file


def _database(
    stack: ExitStack, home: Path, admin_url: str | None, db_name: str, pids: dict[str, int]
) -> tuple[str, Logins]:
    """A fresh migrated ``db_name`` on the given server or the local cluster."""
    if admin_url:
        print("- PostgreSQL: using the given server (ARX_DATABASE_URL)")
    else:
        cluster = LocalPostgres(_cluster_dir(home) / "data")
        started = not cluster.is_running()
        cluster.ensure()
        if started:
            stack.callback(cluster.stop)
        admin_url = cluster.admin_url
        pids["postgres"] = cluster.postmaster_pid()
        print(f"- PostgreSQL: local cluster on {LOOPBACK}:{cluster.port}")
    drop_database(admin_url, db_name)
    db_admin_url = create_database(admin_url, db_name)
    logins = migrate_and_grant(db_admin_url)
    print(
        f"- database {db_name!r} created and migrated (agents' calls run as arx_app, "
        "administration as arx_control)"
    )
    return admin_url, logins


def _start_suite(stack: ExitStack, logs: Path, sandbox_secret: str) -> tuple[str, int]:
    """The Okta, Jira, Splunk and Sentinel sandboxes (one process): URL and pid."""
    port = free_port()
    suite = _python_service(
        [
            "uvicorn",
            "--factory",
            "arx.sandbox.suite:app_from_env",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        name="vendor sandboxes",
        log=logs / "sandboxes.log",
        port=port,
        probe=None,
        env={"ARX_SANDBOX_SECRET": sandbox_secret},
    )
    stack.enter_context(_running(suite))
    return f"http://{LOOPBACK}:{port}", _pid(suite)


def _start_falcon(
    stack: ExitStack, logs: Path, sandbox_secret: str, sandbox_rate_limit: int | None
) -> tuple[str, int]:
    """The Falcon sandbox on a free loopback port: its URL and pid."""
    falcon_port = free_port()
    falcon = _python_service(
        [
            "uvicorn",
            "--factory",
            "arx.sandbox.falcon:app_from_env",
            "--host",
            LOOPBACK,
            "--port",
            str(falcon_port),
            "--log-level",
            "warning",
        ],
        name="Falcon sandbox",
        log=logs / "falcon.log",
        port=falcon_port,
        probe=None,
        env={
            "ARX_SANDBOX_FALCON_CLIENT_ID": SANDBOX_CLIENT_ID,
            "ARX_SANDBOX_FALCON_CLIENT_SECRET": sandbox_secret,
            **(
                {"ARX_SANDBOX_FALCON_RATE_LIMIT": str(sandbox_rate_limit)}
                if sandbox_rate_limit is not None
                else {}
            ),
        },
    )
    stack.enter_context(_running(falcon))
    pid = _pid(falcon)
    falcon_url = f"http://{LOOPBACK}:{falcon_port}"
    return falcon_url, pid


@contextmanager
def local_stack(
    *,
    home: Path,
    port: int,
    admin_url: str | None = None,
    db_name: str = DEMO_DB,
    api_workers: int = 1,
    sandbox_rate_limit: int | None = None,
    seed: bool = True,
    api_env_extra: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start PostgreSQL (unless ``admin_url`` names a server), OPA, the Falcon
    sandbox and the API, and (unless not ``seed``) seed the example org in a
    fresh ``db_name`` and push and activate its policy. ``api_env_extra``: more
    ``ARX_*`` variables for the API (tests: a short deadline, a fault)."""
    home = home.absolute()
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if is_port_open(port):
        raise DevstackError(f"port {port} is in use: is ARX already running? (use --port N)")
    _secret_file(home / "kek", base64.b64encode(os.urandom(32)).decode())
    # A fresh database each run: a fresh bootstrap token and owner password.
    bootstrap_token = secrets.token_urlsafe(24)
    owner_password = secrets.token_urlsafe(18)
    sandbox_secret = _secret_file(home / "sandbox_secret", secrets.token_urlsafe(24))

    pids: dict[str, int] = {}
    with ExitStack() as stack:
        admin_url, logins = _database(stack, home, admin_url, db_name, pids)

        opa = opa_binary(REPO_ROOT)
        # ARX signs every bundle it serves; the sidecar verifies with the public half.
        signing_key = signing.ensure_key(home / "bundle-signing.pem")
        public_key = signing.write_public_key(signing_key, signing.public_path(signing_key))
        opa_port = free_port()
        opa_token = secrets.token_urlsafe(32)

        falcon_url, pids["sandbox"] = _start_falcon(stack, logs, sandbox_secret, sandbox_rate_limit)
        print(f"- CrowdStrike Falcon sandbox {falcon_url}")
        sandbox_url, pids["sandboxes"] = _start_suite(stack, logs, sandbox_secret)
        print(f"- Okta, Jira, Splunk and Sentinel sandboxes under {sandbox_url}")

        base = f"http://{LOOPBACK}:{port}"
        api_env = {
            "ARX_DATABASE_URL": logins.app_url,
            "ARX_CONTROL_DATABASE_URL": logins.control_url,
            "ARX_OPA_URL": f"http://{LOOPBACK}:{opa_port}",
            "ARX_OPA_TOKEN": opa_token,
            "ARX_OPA_BINARY": str(opa),
            "ARX_BUNDLE_SIGNING_KEY_FILE": str(signing_key),
            # Ed25519: the audit trail's checkpoints (its witness file beside it).
            "ARX_AUDIT_SIGNING_KEY_FILE": str(ensure_audit_key(home / "audit-signing.pem")),
            "ARX_KEK_FILE": str(home / "kek"),
            "ARX_BOOTSTRAP_TOKEN": bootstrap_token,
            "ARX_ALLOW_INSECURE_CONNECTOR_URLS": "1",
            # The example org (and the tests' orgs) call the local Falcon sandbox.
            "ARX_SANDBOX_ORGS": "*",
            "ARX_PUBLIC_URL": base,
            # The local demo is plain http on loopback: a Secure cookie would never be sent.
            "ARX_COOKIE_SECURE": "0",
            **(api_env_extra or {}),
        }
        api = _python_service(
            ["arx.cli.main", "serve", "--port", str(port), "--workers", str(api_workers)],
            name="ARX API",
            log=logs / "api.log",
            port=port,
            # /health needs the sidecar, which needs the API's bundle service.
            probe=None,
            env=api_env,
        )
        stack.enter_context(_running(api))
        pids["api"] = _pid(api)
        print(f"- ARX API {base} (logs: {logs / 'api.log'})")
        sidecar = OpaSidecar(
            opa,
            log_path=logs / "opa.log",
            port=opa_port,
            token=opa_token,
            service=BundleService(url=f"{base}/v1/opa", public_key=public_key),
        )
        stack.enter_context(_running(sidecar))
        pids["opa"] = sidecar.pid
        _wait_ready(port)
        print(
            f"- OPA sidecar {sidecar.url}: locked down, its bundles from ARX's bundle "
            "service (signed, verified with bundle-signing.pub.pem)"
        )
        seeded = (
            _seed_and_publish(
                sidecar,
                base,
                bootstrap_token=bootstrap_token,
                owner_password=owner_password,
                falcon_url=falcon_url,
                sandbox_secret=sandbox_secret,
                sandbox_url=sandbox_url,
            )
            if seed
            else None
        )
        env_file = _write_cli_env(home, base, seeded.owner_token if seeded else "")
        yield Stack(
            base_url=base,
            falcon_url=falcon_url,
            falcon_client_secret=sandbox_secret,
            sandbox_url=sandbox_url,
            opa_url=sidecar.url,
            opa_token=sidecar.token,
            api_keys=seeded.api_keys if seeded else {},
            env_file=env_file,
            logs=logs,
            api_env=api_env,
            admin_url=admin_url,
            pids=pids,
            org_id=str(seeded.org_id) if seeded else "",
            owner_token=seeded.owner_token if seeded else "",
            owner_email=seeded.owner_email if seeded else "",
            owner_password=owner_password,
        )


def run_demo(*, port: int = 8080, wait: bool = True, home: Path | None = None) -> None:
    print("ARX demo: starting the whole system locally")
    home = home or REPO_ROOT / ".arx"
    # The demo is a developer tool run from a shell: its one environment knob.
    admin_url = os.environ.get("ARX_DATABASE_URL") or None
    with local_stack(home=home, port=port, admin_url=admin_url) as st:
        if wait:
            print(
                f"""
Its third call escalates and waits for you. Approve (or reject) it on the review page:
  Review page:    {st.base_url}/review/example
  Sign in as:     {st.owner_email}, password {st.owner_password}
                  (the local owner, also a reviewer; shown once, new on every run)"""
            )
        print("\nRunning the demo agent (examples/demo_agent.py, using the agentvault SDK):\n")
        code = _run_agent(st, person=wait)
        if code != 0:
            raise DevstackError(f"the demo agent failed (exit {code}); see {st.logs / 'api.log'}")
        base, key = st.base_url, st.api_keys["triage-bot"]
        shown = "(printed above)" if wait else st.owner_password
        print(
            f"""
ARX is running.
  API:            {base}
  OpenAPI:        {base}/schema/openapi.json  (browse: {base}/schema)
  Health:         {base}/health
  Demo agent key: {key}   (agent triage-bot)
  Try it:         curl -s -X POST {base}/v1/sdk/execute \\
                    -H "Authorization: Bearer {key}" \\
                    -H 'content-type: application/json' \\
                    -d '{{"connector":"crowdstrike","operation":"hosts:search","params":{{}}}}'
  Review page:    {base}/review/example  (escalations wait there for a reviewer)
  Sign in:        {base}/auth/login  as {st.owner_email}, password {shown}
                  (a local owner and reviewer account; shown once, new on every run)
  CLI:            . {st.env_file} && .venv/bin/arx audit list
                  (ARX_URL and the owner's admin token ARX_TOKEN)
  Stop:           Ctrl-C here (stops the API, OPA, the sandbox and the cluster it started)
"""
        )
        if wait:
            _wait_for_interrupt()
        print("Stopping ARX ...")


# How long the demo agent waits for a person to approve its containment.
REVIEW_WAIT_SECONDS = 900


def _run_agent(st: Stack, *, person: bool) -> int:
    """Run the demo agent. Its containment escalates and waits for a reviewer:
    a person on the review page (``person``), or the demo itself, which signs
    in as the local reviewer and approves on the same page."""
    import subprocess  # noqa: PLC0415

    env = {
        **os.environ,
        "ARX_BASE_URL": st.base_url,
        "DEMO_TRIAGE_KEY": st.api_keys["triage-bot"],
        "DEMO_RESPONDER_KEY": st.api_keys["responder-bot"],
        "DEMO_APPROVAL_WAIT": str(REVIEW_WAIT_SECONDS if person else 60),
    }
    agent = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "examples" / "demo_agent.py")], env=env, cwd=REPO_ROOT
    )
    try:
        if not person:
            approval = reviewer.first_pending(st.base_url, st.org_id, st.owner_token, timeout=60)
            reviewer.approve(
                st.base_url,
                "example",
                approval,
                email=st.owner_email,
                password=st.owner_password,
                comment="the demo's reviewer, --no-wait",
            )
            print(f"   (the demo signed in as {st.owner_email} and approved it on the review page)")
        return agent.wait()
    finally:
        if agent.poll() is None:
            agent.terminate()
            agent.wait()


def _wait_for_interrupt() -> None:
    stop = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handler)
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
