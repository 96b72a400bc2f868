"""``arx policy``: ship an org's policy bundles through the admin API.

    arx policy push DIR|FILE [--description TEXT]   vet with ARX's opa and store
    arx policy activate REVISION                     sign and serve to every sidecar
    arx policy rollback [--to REVISION]              back to the previous (or a given) one
    arx policy status                                the active revision and its history
    arx policy bundles                               every pushed revision (metadata)
    arx policy keygen FILE                           the deployment's signing key (operator)
    arx policy test DIR [--threshold N]              locally: what a push checks, and coverage
    arx policy eval --input FILE [--bundle DIR]      locally: the decision for one input

A directory is packed with its tests (ARX runs them); a file must be a
``.tar.gz`` bundle archive. Nothing is activated by a push.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from arx.cli.client import CLIError
from arx.cli.commands import Session, body
from arx.policy.lifecycle import archive
from arx.policy.lifecycle.types import Activate, Rollback

# Registers one `arx policy` subcommand that calls the API (main._api).
Api = Callable[..., argparse.ArgumentParser]


def bundle_archive(path: Path) -> bytes:
    """The archive to upload: a directory packed (tests included), or a .tar.gz as is."""
    if path.is_dir():
        if not (path / archive.MANIFEST).is_file():
            raise CLIError(f"{path} has no .manifest: is it a bundle directory?", "bad_input")
        return archive.pack(path)
    if path.is_file():
        return path.read_bytes()
    raise CLIError(f"{path} is neither a bundle directory nor a .tar.gz file", "bad_input")


def push(s: Session, *, path: Path, description: str | None) -> bytes:
    params = {"description": description} if description else None
    return s.client.send(
        "POST",
        f"{s.org}/policy/bundles",
        params=params,
        upload=(bundle_archive(path), "application/gzip"),
    )


def activate(s: Session, *, revision: str) -> bytes:
    return s.client.send("POST", f"{s.org}/policy/activate", body=body(Activate, revision=revision))


def rollback(s: Session, *, to: str | None) -> bytes:
    return s.client.send("POST", f"{s.org}/policy/rollback", body=body(Rollback, to=to))


def status(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/policy")


def bundles(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/policy/bundles")


def keygen(ns: argparse.Namespace) -> bytes:
    """Create the bundle signing key (0600) and its public half beside it."""
    from arx.policy.lifecycle import signing  # noqa: PLC0415

    key: Path = ns.file
    if key.exists():
        raise CLIError(f"{key} exists: ARX never overwrites a signing key", "exists")
    signing.ensure_key(key)
    public = signing.write_public_key(
        key, key.with_name(key.name.removesuffix(".pem") + ".pub.pem")
    )
    return msgspec.json.encode(
        {
            "signing_key": str(key),
            "public_key": str(public),
            "use": "ARX_BUNDLE_SIGNING_KEY_FILE=<signing_key> for the API; "
            "--set-file keys.arx.key=<public_key> for each OPA sidecar (opa/config.yaml)",
        }
    )


def add_commands(group: Any, api: Api) -> None:
    """Register the ``arx policy`` commands on ``group``."""
    p = group.add_parser(
        "keygen", help="create the bundle signing key (ECDSA P-256) and its public half"
    )
    p.add_argument("file", type=Path, help="where the private key goes (its .pub.pem beside it)")
    p.set_defaults(operator=keygen)
    add_local_commands(group)
    p = api(group, "push", "vet a bundle with ARX's opa (roots, compile, tests) and store it")
    p.add_argument("path", type=Path, metavar="DIR|FILE", help="bundle directory or .tar.gz")
    p.add_argument("--description", help="what changed (kept with the revision)")
    p.set_defaults(call=lambda s, ns: push(s, path=ns.path, description=ns.description))
    p = api(group, "activate", "serve a pushed revision to every sidecar (signed)")
    p.add_argument("revision")
    p.set_defaults(call=lambda s, ns: activate(s, revision=ns.revision))
    p = api(group, "rollback", "go back to the revision active before the current one")
    p.add_argument("--to", metavar="REVISION", help="a given revision instead")
    p.set_defaults(call=lambda s, ns: rollback(s, to=ns.to))
    p = api(group, "status", "the active revision and the activation history")
    p.set_defaults(call=lambda s, ns: status(s))
    p = api(group, "bundles", "every pushed revision (metadata only)")
    p.set_defaults(call=lambda s, ns: bundles(s))


# --- local commands: the engineer's own checkout, ARX's pinned opa, no API ---------------


def _toolchain() -> Any:
    import os  # noqa: PLC0415

    from arx.devstack.opa import opa_binary  # noqa: PLC0415  (finds or builds the pinned opa)
    from arx.policy.lifecycle.toolchain import Toolchain  # noqa: PLC0415
    from arx.runtime import BASE_LIBRARY  # noqa: PLC0415

    opa = os.environ.get("ARX_OPA_BINARY") or str(opa_binary(BASE_LIBRARY.parent))
    base = Path(os.environ.get("ARX_POLICY_BASE_DIR") or BASE_LIBRARY)
    return Toolchain(Path(opa), base.resolve())


def _slug_of(source: Path) -> str:
    manifest = archive.read_manifest(source)
    roots = manifest.get("roots")
    if isinstance(roots, list) and len(roots) == 1 and str(roots[0]).startswith("orgs/"):
        return str(roots[0]).removeprefix("orgs/")
    raise CLIError(
        f'{source}/.manifest must declare "roots": ["orgs/<slug>"] for one org', "bad_input"
    )


def test(ns: argparse.Namespace) -> bytes:
    """What a push checks, locally: roots, strict compile, the org document,
    the tests; then line coverage of the bundle's own files."""
    import asyncio  # noqa: PLC0415
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    source: Path = ns.dir
    slug = _slug_of(source)
    tools = _toolchain()
    with tempfile.TemporaryDirectory(prefix="arx-policy-test-") as tmp:
        bundle = Path(tmp) / "bundle"
        shutil.copytree(source, bundle)
        vetted = asyncio.run(tools.vet(bundle, slug))
        # The coverage run under the same capabilities vet wrote beside it.
        _, out, _ = asyncio.run(
            tools.run(
                ["test", "--capabilities", "capabilities.json", "base", "bundle", "--coverage"],
                what="opa test",
                cwd=Path(tmp),
            )
        )
    doc = json.loads(out) if out.strip() else {}
    # Line coverage of the Rego the tests ran: the base library's and the
    # bundle's own (rules-as-data have no lines of their own).
    files = {
        name: round(float(f.get("coverage", 0.0)), 1)
        for name, f in doc.get("files", {}).items()
        if not name.endswith("_test.rego")
    }
    overall = round(float(doc.get("coverage", 0.0)), 1)
    report = {
        "org": slug,
        "tests_passed": vetted.tests_passed,
        "coverage_percent": overall,
        "coverage_by_file": files,
    }
    if overall < ns.threshold:
        raise CLIError(
            f"coverage {overall}% is below {ns.threshold}% "
            f"(all {vetted.tests_passed} tests passed)",
            "coverage_below_threshold",
        )
    return msgspec.json.encode(report)


def evaluate(ns: argparse.Namespace) -> bytes:
    """``data.arx.decision`` for one input (a recorded one, or written by hand)."""
    import asyncio  # noqa: PLC0415
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    doc = json.loads(Path(ns.input).read_bytes())
    # A recorded body is {"input": …}; a bare input document is the input.
    if isinstance(doc, dict) and set(doc) == {"input"}:
        doc = doc["input"]
    tools = _toolchain()
    with tempfile.TemporaryDirectory(prefix="arx-policy-eval-") as tmp:
        work = Path(tmp)
        tools.copy_base(work / "base")
        bundles = [Path("base")]
        if ns.bundle is not None:
            _slug_of(ns.bundle)
            shutil.copytree(ns.bundle, work / "bundle")
            bundles.append(Path("bundle"))
        (work / "input.json").write_text(json.dumps({"inputs": [doc]}))
        value = asyncio.run(
            tools.evaluate_many(
                bundles,
                Path("input.json"),
                "[d | some x in input.inputs; d := data.arx.decision with input as x]",
                cwd=work,
            )
        )
    return msgspec.json.encode(value[0])


def add_local_commands(group: Any) -> None:
    p = group.add_parser(
        "test",
        help="run locally what a push checks (roots, strict compile, the org document, "
        "the bundle's tests with the base library) and report coverage",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="the org bundle's directory")
    p.add_argument(
        "--threshold", type=float, default=0.0, help="fail below this line coverage (percent)"
    )
    p.set_defaults(operator=test)
    p = group.add_parser(
        "eval", help="the decision for one input, with the base library (and a bundle)"
    )
    p.add_argument("--input", required=True, metavar="FILE", help='an input (or {"input": …})')
    p.add_argument("--bundle", type=Path, metavar="DIR", help="the org bundle's directory")
    p.set_defaults(operator=evaluate)
