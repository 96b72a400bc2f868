"""The ``opa`` binary, bundle builds, and an OPA sidecar on loopback.

Guarantees: the binary is exactly the version pinned in ``opa/VERSION``; a
bundle's revision is a pure function of its source (same files, same revision;
any change to a non-test file, a new one or a removed one, a new revision), so
the revision recorded with a decision names the policy text that made it; the
sidecar listens on 127.0.0.1 only, answers only the holder of its token, and
is ready once every bundle is active.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from arx.devstack.ports import LOOPBACK, free_port
from arx.devstack.process import DevstackError, ManagedProcess, run_command
from arx.policy.lifecycle.distribution import source_revision

OPA_PATH_FILE = Path(".arx") / "opa-path"
TEST_FILES = "*_test.rego"


def pinned_version(repo_root: Path) -> str:
    """The OPA version in ``opa/VERSION``, without a leading ``v``."""
    return (repo_root / "opa" / "VERSION").read_text(encoding="utf-8").strip().removeprefix("v")


def opa_binary(repo_root: Path) -> Path:
    """Return a usable ``opa`` of the pinned version, installing it if needed.

    Trusts ``.arx/opa-path`` (written by scripts/bootstrap.sh) when the binary it
    names reports the pinned version; otherwise runs ``opa/install.sh`` and
    records its answer there.
    """
    version = pinned_version(repo_root)
    recorded = repo_root / OPA_PATH_FILE
    try:
        candidate = Path(recorded.read_text(encoding="utf-8").strip())
    except OSError:
        candidate = None
    if candidate is not None and candidate.is_absolute() and _reports(candidate, version):
        return candidate
    out = run_command(
        ["bash", repo_root / "opa" / "install.sh"],
        what=f"opa/install.sh (find or build opa v{version})",
        timeout=1800,  # a first `go install` compiles OPA from source
    )
    path = Path(out.strip())
    if not _reports(path, version):
        raise DevstackError(f"opa/install.sh answered {path}, which is not opa v{version}")
    recorded.parent.mkdir(parents=True, exist_ok=True)
    tmp = recorded.with_suffix(".tmp")
    tmp.write_text(f"{path}\n", encoding="utf-8")
    tmp.replace(recorded)
    return path


def _reports(opa: Path, version: str) -> bool:
    if not os.access(opa, os.X_OK):
        return False
    try:
        out = run_command([opa, "version"], what="opa version", timeout=30)
    except DevstackError:
        return False
    return any(line.split() == ["Version:", version] for line in out.splitlines())


def build_bundle(opa: Path, source: Path, out: Path, *, name: str) -> str:
    """Build ``source`` into the bundle tarball ``out`` and return its revision.

    Runs ``opa build -b . --ignore '*_test.rego' -r <revision> -o <out>`` from
    inside ``source``, so file names in the bundle are relative to the bundle
    root rather than carrying this machine's path.
    """
    source = source.resolve()
    if not source.is_dir():
        raise DevstackError(f"bundle source {source} is not a directory")
    revision = source_revision(source, name=name)
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    run_command(
        [opa, "build", "-b", ".", "--ignore", TEST_FILES, "-r", revision, "-o", out],
        what=f"opa build {source}",
        cwd=source,
    )
    return revision


# The sidecar's system authorization policy (see its METADATA), and its boot
# configuration when ARX serves its bundles.
AUTHZ_POLICY = Path(__file__).resolve().parents[2] / "opa" / "authz.rego"
SIDECAR_CONFIG = Path(__file__).resolve().parents[2] / "opa" / "config.yaml"
SERVICE_URL_ENV = "ARX_BUNDLE_SERVICE_URL"


# Where OPA (opa/authz.rego) and ARX both read the sidecar's token.
TOKEN_ENV = "ARX_OPA_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


@dataclass(frozen=True, slots=True)
class BundleService:
    """Where a sidecar gets its bundles from ARX: the API's ``/v1/opa`` and the
    public half of ARX's bundle signing key."""

    url: str
    public_key: Path


class OpaSidecar:
    """``opa run --server`` on ``127.0.0.1:<port>``, serving either the given
    bundle files or, with ``service``, what ARX's bundle service hands it
    (``opa/config.yaml``: discovery, one signed bundle per org).

    Locked down: ``--authentication=token --authorization=basic`` with
    ``opa/authz.rego``, so only the holder of ``token`` (ARX:
    ``ARX_OPA_TOKEN``) gets its decision and health check, and nothing can
    write to the sidecar or read anything else from it. OPA reads the token
    from its environment (the same variable); no file holds it.

    Ready, with files, when ``GET /health?bundles`` answers 200 (every bundle
    is active); from a service, when the base library answers a decision
    (orgs come and go after). Bundles must declare disjoint ``roots`` in
    their manifests. Use as a context manager, or call ``start()`` and
    ``stop()``.
    """

    def __init__(
        self,
        opa: Path,
        bundles: Sequence[Path] = (),
        *,
        log_path: Path,
        service: BundleService | None = None,
        port: int | None = None,
        startup_timeout: float = 15.0,
        token: str | None = None,
    ) -> None:
        if not bundles and service is None:
            raise ValueError("OpaSidecar needs bundle files or a bundle service")
        self.service = service
        self.opa = opa
        self.bundles = [b.absolute() for b in bundles]
        self.log_path = log_path
        self.port = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        self.token = token or secrets.token_urlsafe(32)
        self._process = ManagedProcess(
            [
                opa,
                "run",
                "--server",
                "--addr",
                f"{LOOPBACK}:{self.port}",
                "--log-level",
                "error",
                "--log-format",
                "json",
                # No phoning home: offline machines would only log a failed check.
                "--skip-version-check",
                # Local sidecar: a stop should not wait the default 10 s for clients.
                "--shutdown-grace-period",
                "1",
                # Org rule data is read on every decision and written only when
                # a bundle activates: keep it as AST (142 fewer allocations per
                # decision with the example bundle).
                "--optimize-store-for-read-speed",
                "--authentication=token",
                "--authorization=basic",
                *self._source(),
                # Beside the bundles and outside their roots, the authorization
                # policy. --bundle would make it a bundle too, and then part of
                # every decision's provenance.
                AUTHZ_POLICY,
            ],
            name=f"opa sidecar on {LOOPBACK}:{self.port}",
            log_path=log_path,
            ready=self._bundles_active if service is None else self._base_answers,
            # Measured per decision (bench/execute.py): collecting garbage a
            # quarter as often (the heap is tens of MB) saves ~15% of the
            # sidecar's CPU, and one scheduler thread another ~20% (no
            # hand-offs or spinning between threads); one core still answers
            # several thousand decisions a second. Both can be overridden.
            env={
                **os.environ,
                "GOGC": os.environ.get("GOGC", "400"),
                "GOMAXPROCS": os.environ.get("GOMAXPROCS", "1"),
                TOKEN_ENV: self.token,
                **({SERVICE_URL_ENV: service.url} if service is not None else {}),
            },
        )

    def _source(self) -> list[str | Path]:
        if self.service is None:
            # Bundle files: a .tar.gz is read as a bundle (roots, revision,
            # provenance).
            return list(self.bundles)
        return [
            "--config-file",
            SIDECAR_CONFIG,
            "--set-file",
            f"keys.arx.key={self.service.public_key.absolute()}",
        ]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def is_running(self) -> bool:
        return self._process.is_running()

    @property
    def pid(self) -> int:
        pid = self._process.pid
        if pid is None:
            raise DevstackError("the OPA sidecar is not running")
        return pid

    def start(self) -> None:
        missing = [str(b) for b in self.bundles if not b.is_file()]
        if missing:
            raise DevstackError(f"bundle file(s) not found: {', '.join(missing)}")
        self._process.start(timeout=self.startup_timeout)

    @property
    def headers(self) -> dict[str, str]:
        """What a client of this sidecar sends: its token."""
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        self._process.stop()

    def _bundles_active(self) -> bool:
        # http.client rather than an HTTP library: no proxy settings from the
        # environment can get between us and loopback.
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=1.0)
        try:
            conn.request("GET", "/health?bundles", headers=self.headers)
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def _empty_decision(self) -> dict[str, Any]:
        """OPA's answer to ``data.arx.decision`` for an empty input, with
        provenance; ``{}`` unless it answered 200 with JSON."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2.0)
        try:
            conn.request(
                "POST",
                "/v1/data/arx/decision?provenance=true",
                body=b'{"input":{}}',
                headers={**self.headers, "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            return {}
        doc = json.loads(body)
        return doc if isinstance(doc, dict) else {}

    def _base_answers(self) -> bool:
        """The decision entrypoint is defined: the base library is loaded."""
        return "result" in self._empty_decision()

    def revisions(self) -> dict[str, str]:
        """Bundle name → revision of what the sidecar decides with (provenance)."""
        bundles = self._empty_decision().get("provenance", {}).get("bundles", {})
        return {name: str(b.get("revision", "")) for name, b in bundles.items()}

    def wait_for_revision(self, name: str, revision: str, timeout: float = 15.0) -> float:
        """Block until bundle ``name`` is at ``revision``; the seconds it took."""
        start = time.monotonic()
        while self.revisions().get(name) != revision:
            if time.monotonic() - start > timeout:
                raise DevstackError(
                    f"the OPA sidecar did not load {name} {revision} within {timeout:g} s "
                    f"(it has {self.revisions()}); see {self.log_path}"
                )
            time.sleep(0.02)
        return time.monotonic() - start

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
