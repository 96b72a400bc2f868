"""Bundle archives are unpacked without trusting them, and packed reproducibly."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from arx.errors import BundleRejectedError
from arx.policy.lifecycle import archive

REPO = Path(__file__).resolve().parents[3]


def _tar(*members: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


MANIFEST = (".manifest", json.dumps({"roots": ["orgs/acme"]}).encode())


def test_pack_is_reproducible_and_unpacks_to_the_same_tree(tmp_path: Path) -> None:
    source = REPO / "bundles" / "example"
    first, second = archive.pack(source), archive.pack(source)
    assert first == second
    out = tmp_path / "out"
    out.mkdir()
    manifest = archive.unpack(first, out)
    assert manifest["roots"] == ["orgs/example"]
    for path in source.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(source)).read_bytes() == path.read_bytes()


def test_an_opa_build_archive_with_leading_slashes_unpacks(tmp_path: Path) -> None:
    data = _tar(("/.manifest", MANIFEST[1]), ("/orgs/acme/data.json", b"{}"))
    archive.unpack(data, tmp_path)
    assert (tmp_path / "orgs" / "acme" / "data.json").read_bytes() == b"{}"


@pytest.mark.parametrize(
    ("member", "says"),
    [
        (("../evil.rego", b"x"), "unsafe path"),
        (("orgs/../../evil.rego", b"x"), "unsafe path"),
        (("orgs\\evil.rego", b"x"), "unsafe path"),
    ],
)
def test_paths_that_escape_are_refused(
    member: tuple[str, bytes], says: str, tmp_path: Path
) -> None:
    with pytest.raises(BundleRejectedError, match=says):
        archive.unpack(_tar(MANIFEST, member), tmp_path)
    assert not (tmp_path.parent / "evil.rego").exists()


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)
def test_links_and_devices_are_refused(kind: bytes, tmp_path: Path) -> None:
    info = tarfile.TarInfo("orgs/acme/data.json")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(BundleRejectedError, match="not a regular file"):
        archive.unpack(_tar(MANIFEST, info), tmp_path)
    assert not (tmp_path / "orgs" / "acme" / "data.json").exists()


def test_duplicates_too_many_members_and_too_many_bytes_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BundleRejectedError, match="twice"):
        archive.unpack(_tar(MANIFEST, ("a.rego", b"1"), ("./a.rego", b"2")), tmp_path / "1")
    monkeypatch.setattr(archive, "MAX_MEMBERS", 3)
    with pytest.raises(BundleRejectedError, match="more than 3 members"):
        archive.unpack(_tar(MANIFEST, *[(f"{i}.rego", b"x") for i in range(5)]), tmp_path / "2")
    monkeypatch.setattr(archive, "MAX_INFLATED_BYTES", 1000)
    with pytest.raises(BundleRejectedError, match="inflates to more than"):
        archive.unpack(_tar(MANIFEST, ("big.json", b"0" * 2000)), tmp_path / "3")


def test_not_an_archive_and_no_manifest_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleRejectedError, match=r"not a readable \.tar\.gz"):
        archive.unpack(b"plain text", tmp_path / "1")
    with pytest.raises(BundleRejectedError, match=r"not a readable \.tar\.gz"):
        archive.unpack(gzip.compress(b"not a tar") + b"x", tmp_path / "2")
    with pytest.raises(BundleRejectedError, match=r"no \.manifest"):
        archive.unpack(_tar(("orgs/acme/data.json", b"{}")), tmp_path / "3")
    with pytest.raises(BundleRejectedError, match="not valid JSON"):
        archive.unpack(_tar((".manifest", b"{")), tmp_path / "4")


@pytest.mark.parametrize(
    "roots", [["orgs"], ["orgs/acme", "arx"], ["orgs/acme/x"], ["orgs/other"], None, "orgs/acme"]
)
def test_roots_must_be_exactly_the_orgs(roots: object) -> None:
    with pytest.raises(BundleRejectedError, match=r'exactly \["orgs/acme"\]'):
        archive.check_roots({"roots": roots}, "acme")
    archive.check_roots({"roots": ["orgs/acme"]}, "acme")
