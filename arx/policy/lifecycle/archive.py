"""Bundle archives: what a policy engineer uploads, unpacked without trust.

An upload is a gzipped tar of a bundle's source (``.manifest``, ``*.rego``,
``data.json``, tests beside them) or a bundle ``opa build`` made (whose
member names start with ``/``). ``unpack`` writes it under a fresh directory
and refuses, before anything is written, whatever could escape that directory
or exhaust the machine: links, devices, absolute or ``..`` paths, too many
members, too many bytes once inflated. ``pack`` makes the archive the CLI
sends, deterministically (sorted names, zeroed times and owners), so the same
source always has the same sha256.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from arx.errors import BundleRejectedError

MAX_MEMBERS = 2000
MAX_INFLATED_BYTES = 32 * 1024 * 1024
# The whole tar stream once inflated (headers included: a PAX header can
# claim gigabytes), checked before tarfile reads a byte of it.
MAX_TAR_BYTES = MAX_INFLATED_BYTES + 4 * 1024 * 1024
MANIFEST = ".manifest"
# Never packed: version control, editors' and Python's leftovers.
_SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".pytest_cache"}


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.lstrip("/"))
    if not path.parts or path.parts == (".",):
        return PurePosixPath(".")
    if any(part in ("..", "") for part in path.parts) or "\\" in name or "\x00" in name:
        raise BundleRejectedError(f"the archive holds an unsafe path: {name!r}")
    return PurePosixPath(*[p for p in path.parts if p != "."])


def unpack(data: bytes, dest: Path) -> dict[str, Any]:
    """Unpack the bundle archive ``data`` into the empty directory ``dest``.

    Returns the parsed ``.manifest``. Raises ``BundleRejectedError`` (422)
    naming what is wrong; ``dest`` then holds nothing that was checked unsafe.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(_inflate(data)), mode="r:") as tar:
            members = _checked_members(tar)
            for member, path in members:
                target = dest / path
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover (regular files always have one)
                    raise BundleRejectedError(f"cannot read {member.name!r} from the archive")
                target.write_bytes(source.read())
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise BundleRejectedError(
            f"the bundle is not a readable .tar.gz archive ({type(exc).__name__})"
        ) from None
    return read_manifest(dest)


def _inflate(data: bytes) -> bytes:
    """The gzip stream ``data`` inflated, refused past ``MAX_TAR_BYTES``."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(data, MAX_TAR_BYTES + 1)
    except zlib.error:
        raise BundleRejectedError("the bundle is not a readable .tar.gz archive") from None
    if len(raw) > MAX_TAR_BYTES:
        raise BundleRejectedError(
            f"the archive inflates to more than {MAX_TAR_BYTES // (1024 * 1024)} MiB"
        )
    if not inflater.eof:
        raise BundleRejectedError("the bundle is not a readable .tar.gz archive (truncated)")
    return raw


def _checked_members(tar: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    checked: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
    inflated = 0
    seen: set[PurePosixPath] = set()
    for member in tar:
        if len(checked) >= MAX_MEMBERS:
            raise BundleRejectedError(f"the archive holds more than {MAX_MEMBERS} members")
        if not (member.isfile() or member.isdir()):
            raise BundleRejectedError(
                f"the archive holds {member.name!r}, which is not a regular file or directory"
            )
        path = _member_path(member.name)
        if path == PurePosixPath("."):
            continue
        if member.isfile():
            if path in seen:
                raise BundleRejectedError(f"the archive holds {member.name!r} twice")
            seen.add(path)
            inflated += member.size
            if inflated > MAX_INFLATED_BYTES:
                raise BundleRejectedError(
                    f"the archive inflates to more than {MAX_INFLATED_BYTES // (1024 * 1024)} MiB"
                )
        checked.append((member, path))
    return checked


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise BundleRejectedError("the bundle has no .manifest (it must declare its roots)")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise BundleRejectedError("the bundle's .manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise BundleRejectedError("the bundle's .manifest must be a JSON object")
    return manifest


def check_roots(manifest: dict[str, Any], slug: str) -> None:
    """An org bundle owns ``orgs/<slug>`` and nothing else, so it can neither
    shadow the base library nor touch another org's data."""
    wanted = [f"orgs/{slug}"]
    roots = manifest.get("roots")
    if roots != wanted:
        raise BundleRejectedError(
            f"the bundle's roots must be exactly {json.dumps(wanted)} for org {slug!r}, "
            f"not {json.dumps(roots)}",
            extra={"roots": roots if isinstance(roots, list) else None},
        )


def pack(source: Path) -> bytes:
    """A deterministic .tar.gz of the directory ``source`` (tests included)."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a directory")
    buffer = io.BytesIO()
    # mtime=0 in the gzip header and every tar member: same files, same bytes.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if any(part in _SKIPPED_DIRS for part in relative.parts):
                continue
            if path.is_symlink() or not path.is_file():
                continue
            info = tarfile.TarInfo(relative.as_posix())
            payload = path.read_bytes()
            info.size = len(payload)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()
