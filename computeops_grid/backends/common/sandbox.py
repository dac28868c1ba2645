"""DIRAC sandboxes: reproducible ``tar.zst`` archives and extraction that cannot escape.

A sandbox is content-addressed on the DiracX side (its name is the sha256 of the
archive), so the archive is built reproducibly: members sorted, owner, group and
mtime zeroed, modes reduced to 0644/0755. The same files give the same bytes, and a
sandbox that is already stored is not uploaded again.

Extraction refuses (it does not silently skip) absolute names, ``..`` components,
links of any kind, and device or fifo members, and names the offending member.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import zstandard

from computeops_grid.errors import BackendError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_EXTRACTED = 2 * 2**30  # refuse archives that expand beyond 2 GiB


class UnsafeSandbox(BackendError):
    """An archive member would land outside the target directory, or is a link/device."""


@dataclass(frozen=True)
class Archive:
    data: bytes
    checksum: str  # sha256 hex of ``data``

    @property
    def size(self) -> int:
        return len(self.data)


def _tarinfo(name: str, path: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    st = path.stat()
    info.size = st.st_size
    info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_archive(files: Sequence[tuple[str, Path]], *, level: int = 3) -> Archive:
    """A reproducible ``tar.zst`` of ``files`` given as ``(name in archive, local path)``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in sorted(files):
            if not path.is_file():
                raise BackendError(f"sandbox file {path} does not exist or is not a regular file")
            with path.open("rb") as fh:
                tar.addfile(_tarinfo(name, path), fh)
    data = zstandard.ZstdCompressor(level=level).compress(raw.getvalue())
    return Archive(data=data, checksum=hashlib.sha256(data).hexdigest())


def _open(data: bytes) -> tarfile.TarFile:
    if data.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
        data = reader.read(MAX_EXTRACTED + 1)
        if len(data) > MAX_EXTRACTED:
            raise UnsafeSandbox(f"sandbox expands beyond {MAX_EXTRACTED} bytes")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")


def check_member(member: tarfile.TarInfo, root: Path) -> Path:
    """The target path of ``member`` under ``root``; raises :class:`UnsafeSandbox` if unsafe."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or not parts:
        raise UnsafeSandbox(f"sandbox member {name!r} would be written outside the target directory")
    if member.issym() or member.islnk():
        raise UnsafeSandbox(f"sandbox member {name!r} is a link (to {member.linkname!r}); links are refused")
    if not (member.isfile() or member.isdir()):
        raise UnsafeSandbox(f"sandbox member {name!r} is not a regular file or directory")
    target = (root / Path(*parts)).resolve()
    if not target.is_relative_to(root):
        raise UnsafeSandbox(f"sandbox member {name!r} resolves outside the target directory")
    return target


def extract_archive(data: bytes, dest: Path) -> list[Path]:
    """Extract a (zstd-)tar sandbox into ``dest``; every member is checked before anything is written."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with _open(data) as tar:
        members = tar.getmembers()
        targets = [check_member(m, root) for m in members]
        if sum(m.size for m in members) > MAX_EXTRACTED:
            raise UnsafeSandbox(f"sandbox expands beyond {MAX_EXTRACTED} bytes")
        written: list[Path] = []
        for member, target in zip(members, targets):
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or not target.parent.resolve().is_relative_to(root):
                raise UnsafeSandbox(f"sandbox member {member.name!r} would be written through a link")
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - regular files always have data
                continue
            target.write_bytes(source.read())
            target.chmod(0o755 if member.mode & 0o100 else 0o644)
            written.append(target)
    return written
