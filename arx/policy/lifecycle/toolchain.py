"""ARX's own ``opa``: checks, tests, builds, signs and evaluates bundles.

The server runs the real binary (the version pinned in ``opa/VERSION``) as a
subprocess, never the sidecar: a bundle is vetted and a replay evaluated
without touching what serves decisions. Runs are serialised (one at a time per
process) and bounded in time, so a flood of pushes cannot take the cores the
hot path needs. When ``opa`` refuses something, its own output is the reason
given to the engineer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arx.errors import BundleRejectedError, PolicyToolBusyError, PolicyToolUnavailableError
from arx.logs import get_logger
from arx.policy.lifecycle import archive

log = get_logger("arx.policy.lifecycle.toolchain")

TEST_FILES = "*_test.rego"
# OPA's messages can be long (one line per failing test); the problem body
# carries at most this much of them.
MAX_OUTPUT_CHARS = 8000
SIGNING_ALG = "ES256"
# Builtins an org's Rego (policy or tests) may not call, here or in the
# sidecar: they reach the network or the host (http.send, net.lookup_ip_addr;
# opa.runtime shows the process's environment, the sidecar's token included),
# or they make a decision depend on more than its input (time.now_ns,
# rand.intn, uuid.rfc4122), which replay could not reproduce. Every command
# that compiles uploaded Rego runs with capabilities that lack them, so such
# a bundle fails to compile and is never stored, signed or served.
DENIED_BUILTINS = frozenset(
    {"http.send", "net.lookup_ip_addr", "opa.runtime", "time.now_ns", "rand.intn", "uuid.rfc4122"}
)
CAPABILITIES = "capabilities.json"
# Uploads queued behind the one being checked, per process, before a 503.
MAX_WAITING = 4


@dataclass(frozen=True, slots=True)
class Vetted:
    """What a bundle that passed every check reports."""

    tests_passed: int
    manifest: dict[str, Any]


def _clip(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_OUTPUT_CHARS:
        return text[:MAX_OUTPUT_CHARS] + "\n… (output cut)"
    return text


class Toolchain:
    def __init__(
        self,
        opa: Path,
        base_dir: Path,
        *,
        signing_key: Path | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.opa = opa
        self.base_dir = base_dir
        self.signing_key = signing_key
        self._timeout = timeout_seconds
        # Uploaded bundles (vet, replay) take turns, and a bounded queue of
        # them waits; ARX's own builds and signatures (activation, discovery)
        # have their own turn, so no upload can hold up a rollback.
        self._uploads = asyncio.Lock()
        self._own = asyncio.Lock()
        self._waiting = 0
        self._capabilities: bytes | None = None

    @contextlib.asynccontextmanager
    async def _uploads_turn(self) -> AsyncIterator[None]:
        """One vet or replay at a time in this process; 503 (retry) when
        ``MAX_WAITING`` are queued already."""
        if self._waiting >= MAX_WAITING:
            raise PolicyToolBusyError(
                "ARX is busy checking other bundles; retry shortly", headers={"retry-after": "5"}
            )
        self._waiting += 1
        try:
            await self._uploads.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._uploads.release()

    async def run(
        self, args: Sequence[str | Path], *, what: str, cwd: Path | None = None
    ) -> tuple[int, str, str]:
        """Run ``opa args``: (exit status, stdout, stderr). Callers hold a turn."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self.opa,
                *[str(a) for a in args],
                cwd=cwd,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
                # Nothing of ARX's environment (database URLs, the KEK)
                # reaches a tool that evaluates an uploaded policy.
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"},
            )
        except OSError as exc:
            raise PolicyToolUnavailableError(
                f"cannot run opa ({type(exc).__name__}): check ARX_OPA_BINARY"
            ) from None
        try:
            async with asyncio.timeout(self._timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BundleRejectedError(
                f"{what} took longer than {self._timeout:g} s and was stopped"
            ) from None
        except asyncio.CancelledError:
            # No orphan opa, and its pipes closed before the loop goes away.
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def _must(self, args: Sequence[str | Path], *, what: str, cwd: Path | None = None) -> str:
        rc, out, err = await self.run(args, what=what, cwd=cwd)
        if rc != 0:
            raise BundleRejectedError(f"{what} failed:\n{_clip(err or out)}")
        return out

    async def vet(self, source: Path, slug: str, *, run_tests: bool = True) -> Vetted:
        """Every check an org bundle must pass before it is stored (in this
        process's turn for uploads).

        ``source`` is the unpacked upload, alone in a scratch directory this
        may write beside it.

        Roots exactly ``orgs/<slug>``; compiles strictly with the base
        library; builds in bundle mode (which enforces the roots on every
        package and data file); its org document is valid as a whole
        (``data.arx.org.valid``: rule shapes, params declared by the
        operation tables); its tests pass with the base library.
        """
        async with self._uploads_turn():
            return await self._vet(source, slug, run_tests=run_tests)

    async def _vet(self, source: Path, slug: str, *, run_tests: bool) -> Vetted:
        manifest = archive.read_manifest(source)
        archive.check_roots(manifest, slug)
        for bad in (".signatures.json", "policy.wasm"):
            if any(source.rglob(bad)):  # noqa: ASYNC240 (a small temporary tree)
                raise BundleRejectedError(
                    f"the bundle holds {bad}: upload the source; ARX builds and signs it"
                )
        # Data only (docs/decisions/0021): org Rego would run in the sidecar
        # every org shares, where it could read other orgs' documents.
        code = sorted(
            p.relative_to(source).as_posix()
            for p in source.rglob("*.rego")  # noqa: ASYNC240 (a small temporary tree)
            if not p.name.endswith("_test.rego")
        )
        if code:
            raise BundleRejectedError(
                "an org bundle holds rules as data (data.json) and tests only; it may not hold "
                f"Rego policy: {', '.join(code)}"
            )
        # Run beside the upload, on relative paths, so OPA's messages name
        # the engineer's files (bundle/orgs/...) and nothing of this machine;
        # with the base library's code but not its tests, so an org's push
        # is judged on its own tests.
        work = source.parent
        base, bundle = Path("base"), Path(source.name)
        self.copy_base(work / base)
        caps: list[str | Path] = ["--capabilities", await self.write_capabilities(work)]
        await self._must(
            ["check", "--strict", *caps, "-b", base, "-b", bundle, "--ignore", TEST_FILES],
            what="opa check --strict",
            cwd=work,
        )
        await self._must(
            ["build", *caps, "-b", bundle, "--ignore", TEST_FILES, "-o", "vetted.tar.gz"],
            what="opa build",
            cwd=work,
        )
        org_input = json.dumps({"org": {"slug": slug}})
        rc, _, _ = await self.run(
            [
                "eval", "--fail", *caps, "-b", base, "-b", bundle, "--ignore", TEST_FILES,
                f"data.arx.org.valid with input as {org_input}",
            ],
            what="opa eval data.arx.org.valid",
            cwd=work,
        )  # fmt: skip
        if rc != 0:
            _, out, err = await self.run(
                [
                    "eval", *caps, "-b", base, "-b", bundle, "--ignore", TEST_FILES,
                    "--format", "raw",
                    f"data.arx.org.errors with input as {org_input}",
                ],
                what="opa eval data.arx.org.errors",
                cwd=work,
            )  # fmt: skip
            raise BundleRejectedError(
                f"the org policy at data.orgs.{slug} is not valid:\n{_clip(out or err)}"
            )
        if not run_tests:
            return Vetted(tests_passed=0, manifest=manifest)
        # Directory mode: test packages sit outside the roots, and data.json
        # files land at the same paths as in the bundle.
        rc, out, err = await self.run(
            ["test", *caps, base, bundle, "--format", "json"], what="opa test", cwd=work
        )
        passed = 0
        try:
            results = json.loads(out) if out.strip() else []
        except ValueError:
            results = None
        if rc != 0 or results is None:
            _, text, text_err = await self.run(
                ["test", *caps, base, bundle], what="opa test", cwd=work
            )
            raise BundleRejectedError(f"opa test failed:\n{_clip(text or text_err)}")
        passed = sum(1 for r in results if isinstance(r, dict) and not r.get("fail"))
        return Vetted(tests_passed=passed, manifest=manifest)

    async def write_capabilities(self, work: Path) -> Path:
        """This opa's capabilities less ``DENIED_BUILTINS`` and any network
        access, written into ``work``; the relative path to pass."""
        if self._capabilities is None:
            out = await self._must(["capabilities", "--current"], what="opa capabilities")
            doc = json.loads(out)
            doc["builtins"] = [b for b in doc["builtins"] if b.get("name") not in DENIED_BUILTINS]
            doc["allow_net"] = []
            self._capabilities = json.dumps(doc).encode()
        (work / CAPABILITIES).write_bytes(self._capabilities)
        return Path(CAPABILITIES)

    def copy_base(self, dest: Path) -> None:
        """The base library's policy and data, without its tests or schema."""
        for path in self.base_dir.rglob("*"):
            relative = path.relative_to(self.base_dir)
            if not path.is_file() or path.name.endswith("_test.rego"):
                continue
            if path.suffix != ".rego" and path.name not in ("data.json", ".manifest"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    async def build(self, source: Path, out: Path, *, revision: str, sign: bool) -> bytes:
        """``opa build`` the bundle (tests left out) with ``revision``; signed
        with ARX's key when ``sign``. Returns the tarball."""
        args: list[str | Path] = ["build", "-b", source, "--ignore", TEST_FILES, "-r", revision]
        if sign:
            if self.signing_key is None:
                raise PolicyToolUnavailableError(
                    "no bundle signing key is configured (ARX_BUNDLE_SIGNING_KEY_FILE)"
                )
            args += ["--signing-key", self.signing_key, "--signing-alg", SIGNING_ALG]
        async with self._own:
            await self._must([*args, "-o", out], what="opa build")
        return out.read_bytes()  # noqa: ASYNC240 (a bundle opa just wrote, kilobytes)

    async def evaluate_many(
        self, bundles: Sequence[Path], inputs_file: Path, query: str, *, cwd: Path
    ) -> Any:
        """Evaluate ``query`` once over ``inputs_file`` (as ``input``) with the
        given bundles; the JSON value of its single result. Run in ``cwd``
        (the capabilities file is written there)."""
        async with self._uploads_turn():
            return await self._evaluate_many(bundles, inputs_file, query, cwd=cwd)

    async def _evaluate_many(
        self, bundles: Sequence[Path], inputs_file: Path, query: str, *, cwd: Path
    ) -> Any:
        caps = await self.write_capabilities(cwd)
        args: list[str | Path] = ["eval", "--capabilities", caps, "--format", "json"]
        args += ["-i", inputs_file]
        for b in bundles:
            args += ["-b", b]
        args += ["--ignore", TEST_FILES, query]
        out = await self._must(args, what="opa eval", cwd=cwd)
        doc = json.loads(out)
        try:
            return doc["result"][0]["expressions"][0]["value"]
        except (KeyError, IndexError, TypeError):
            raise BundleRejectedError("opa eval produced no result") from None
