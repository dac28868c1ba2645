"""Sandbox archives: reproducible (content-addressed reuse) and safe to extract."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from computeops_grid.backends.common.sandbox import UnsafeSandbox, build_archive, extract_archive


def hostile(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if data else None)
    return zstandard.ZstdCompressor().compress(raw.getvalue())


def test_archive_is_reproducible_and_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("payload\n")
    first = build_archive([("in.txt", src)])
    src.touch()  # a new mtime must not change the content address
    second = build_archive([("in.txt", src)])
    assert first.checksum == second.checksum
    files = extract_archive(first.data, tmp_path / "out")
    assert [f.name for f in files] == ["in.txt"]
    assert (tmp_path / "out" / "in.txt").read_text() == "payload\n"


def _sym(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _hard(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info


def _fifo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (tarfile.TarInfo("../escape.txt"), "outside the target"),
        (tarfile.TarInfo("/tmp/abs-escape.txt"), "outside the target"),
        (tarfile.TarInfo("a/../../escape.txt"), "outside the target"),
        (_sym("link", "/etc/passwd"), "is a link"),
        (_sym("rel", "../../outside"), "is a link"),
        (_hard("hard", "/etc/shadow"), "is a link"),
        (_fifo("pipe"), "not a regular file"),
    ],
)
def test_hostile_sandbox_is_refused_before_anything_is_written(
    tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeSandbox, match=reason):
        extract_archive(hostile(member, b"x" if member.isfile() else b""), dest)
    assert not (dest / "fine.txt").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/abs-escape.txt").exists()
