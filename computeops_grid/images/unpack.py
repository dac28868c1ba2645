"""Safe extraction of OCI layer tars, and their application onto a flat root filesystem.

Every tar entry is checked before anything is written; an entry that is refused is
reported (path + reason) and never touches the disk:

* names: absolute paths, ``..`` components and over-long paths are refused;
* writes never follow a symlink: a parent directory that is a symlink is refused
  (symlink-then-write), files are created with ``O_EXCL | O_NOFOLLOW`` after unlinking;
* hard links must point at a regular file of the same layer, inside the tree;
* device nodes and fifos are refused; setuid/setgid/sticky bits on files and
  setuid/setgid on directories are stripped (reported as neutralised);
* permissions are made readable (directories also traversable) for everyone;
* limits on entries and uncompressed bytes stop tar bombs (always fatal).

OCI whiteouts (``.wh.NAME``) and opaque markers (``.wh..wh..opq``) are kept as empty marker
files in the layer directory and *applied* (the files are gone) in the flat root filesystem.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from computeops_grid.images.errors import UnsafeArchive

log = logging.getLogger(__name__)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Policy(str, enum.Enum):
    """What a refused entry does to the publish: ``fail`` it, or ``skip`` the entry."""

    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Limits:
    """Tar-bomb limits, per layer. Exceeding one always fails the publish."""

    max_entries: int = 2_000_000
    max_bytes: int = 64 * 1024**3
    max_path: int = 4096


@dataclass(frozen=True)
class Refusal:
    path: str
    reason: str
    neutralised: bool = False  # kept, with the dangerous part removed (e.g. setuid bit)


class _Refuse(Exception):
    pass


@dataclass
class LayerIndex:
    """What one layer holds: ``entries[path] = [kind, mode, size, sha256-or-target(, target)]``.

    kinds: ``f`` file, ``h`` hard link (sha256 of content, then link target), ``d`` dir, ``l`` symlink.
    """

    entries: dict[str, list[Any]] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "whiteouts": self.whiteouts,
            "opaque": self.opaque,
            "refusals": [[r.path, r.reason, r.neutralised] for r in self.refusals],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerIndex:
        return cls(
            entries=dict(data["entries"]),
            whiteouts=list(data["whiteouts"]),
            opaque=list(data["opaque"]),
            refusals=[Refusal(p, r, bool(n)) for p, r, n in data.get("refusals", [])],
        )

    def put(self, path: str, entry: list[Any]) -> None:
        self.entries.pop(path, None)  # a later entry of the same name wins and moves to the end
        self.entries[path] = entry


def clean_name(name: str, max_path: int = 4096) -> str:
    """Normalise a tar member name to ``a/b/c``; ``""`` is the root. Raises ``_Refuse``."""
    if "\x00" in name:
        raise _Refuse("NUL byte in name")
    if name.startswith("/"):
        raise _Refuse("absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refuse("path escapes the image with '..'")
    path = "/".join(parts)
    if len(path) > max_path:
        raise _Refuse(f"path longer than {max_path} characters")
    return path


class Tree:
    """A directory written only through checked operations that never follow symlinks."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = str(root)
        self._dirs: set[str] = {""}  # relative paths known to be real directories

    def full(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def real_dir(self, rel: str, *, create: bool) -> bool:
        """Is ``rel`` a real directory reached without symlinks? Creates missing ones if asked."""
        if rel in self._dirs:
            return True
        cur = ""
        for comp in rel.split("/"):
            cur = f"{cur}/{comp}" if cur else comp
            if cur in self._dirs:
                continue
            try:
                st = os.lstat(self.full(cur))
            except FileNotFoundError:
                if not create:
                    return False
                os.mkdir(self.full(cur), 0o755)
                self._dirs.add(cur)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise _Refuse(f"parent {cur!r} is a symlink; writing through it could escape the tree")
            if not stat.S_ISDIR(st.st_mode):
                raise _Refuse(f"parent {cur!r} is not a directory")
            self._dirs.add(cur)
        return True

    def prepare(self, rel: str) -> str:
        """Make the parent of ``rel`` a real directory and remove whatever is at ``rel``."""
        self.real_dir(rel.rpartition("/")[0], create=True)
        self.remove(rel)
        return self.full(rel)

    def remove(self, rel: str) -> None:
        full = self.full(rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(full)
            prefix = rel + "/"
            self._dirs = {d for d in self._dirs if d != rel and not d.startswith(prefix)}
        else:
            os.unlink(full)

    def make_dir(self, rel: str, mode: int) -> None:
        full = self.full(rel)
        if rel in self._dirs or (self.real_dir(rel.rpartition("/")[0], create=True) and _is_dir(full)):
            os.chmod(full, mode)
        else:
            self.remove(rel)
            os.mkdir(full, mode)
            os.chmod(full, mode)
        self._dirs.add(rel)

    def write_file(self, rel: str, src: IO[bytes] | None, mode: int, data: bytes = b"") -> str:
        """Create ``rel`` (never through a symlink) from ``src`` or ``data``; return its sha256."""
        full = self.prepare(rel)
        digest = hashlib.sha256()
        fd = os.open(full, _OPEN_FLAGS, 0o600)
        with os.fdopen(fd, "wb") as out:
            if src is not None:
                chunk = src.read(_CHUNK)
                while chunk:
                    digest.update(chunk)
                    out.write(chunk)
                    chunk = src.read(_CHUNK)
            else:
                digest.update(data)
                out.write(data)
            os.fchmod(out.fileno(), mode)
        return digest.hexdigest()

    def symlink(self, rel: str, target: str) -> None:
        os.symlink(target, self.prepare(rel))

    def hardlink(self, rel: str, source: str) -> None:
        os.link(source, self.prepare(rel), follow_symlinks=False)


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _file_mode(member: tarfile.TarInfo, index: LayerIndex, path: str) -> int:
    mode = member.mode & 0o7777
    if mode & 0o7000:
        index.refusals.append(Refusal(path, f"setuid/setgid/sticky bits {oct(mode & 0o7000)} removed", True))
    mode &= 0o777
    mode |= 0o444
    if mode & 0o111:
        mode |= 0o111
    return mode


def _dir_mode(member: tarfile.TarInfo, index: LayerIndex, path: str) -> int:
    mode = member.mode & 0o7777
    if mode & 0o6000:
        index.refusals.append(Refusal(path, f"setuid/setgid bits {oct(mode & 0o6000)} removed", True))
    return (mode & 0o1777) | 0o755


def unpack_layer(
    stream: IO[bytes], dest: Path, *, limits: Limits | None = None, policy: Policy = Policy.FAIL
) -> LayerIndex:
    """Extract the layer tar read from ``stream`` (plain or gzip) into ``dest``; return its index.

    Raises :class:`UnsafeArchive` on a limit, or (policy ``fail``) when any entry was refused.
    """
    limits = limits or Limits()
    tree = Tree(dest)
    index = LayerIndex()
    count = total = 0
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            count += 1
            if count > limits.max_entries:
                raise UnsafeArchive(f"layer has more than {limits.max_entries} entries (tar bomb?)")
            if member.isreg():
                total += member.size
                if total > limits.max_bytes:
                    raise UnsafeArchive(f"layer unpacks to more than {limits.max_bytes} bytes (tar bomb?)")
            try:
                _extract(tar, member, tree, index, limits)
            except _Refuse as exc:
                index.refusals.append(Refusal(member.name, str(exc)))
    refused = [r for r in index.refusals if not r.neutralised]
    for refusal in index.refusals:
        log.warning("%s: %s", refusal.path, refusal.reason)
    if refused and policy is Policy.FAIL:
        raise UnsafeArchive(
            f"layer refused: {len(refused)} unsafe entries",
            refused,
            hint="rebuild the image without them, or publish with --on-unsafe skip to leave them out",
        )
    return index


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, tree: Tree, index: LayerIndex, limits: Limits
) -> None:
    path = clean_name(member.name, limits.max_path)
    if not path:
        return  # the root directory entry itself
    parent, _, base = path.rpartition("/")
    if base.startswith(WHITEOUT):
        _whiteout(tree, index, parent, base)
    elif member.isdir():
        mode = _dir_mode(member, index, path)
        tree.make_dir(path, mode)
        index.put(path, ["d", mode, 0, ""])
    elif member.isreg():
        mode = _file_mode(member, index, path)
        digest = tree.write_file(path, tar.extractfile(member), mode)
        index.put(path, ["f", mode, member.size, digest])
    elif member.issym():
        if not member.linkname or "\x00" in member.linkname:
            raise _Refuse("symlink with an empty target")
        tree.symlink(path, member.linkname)
        index.put(path, ["l", 0o777, 0, member.linkname])
    elif member.islnk():
        _hardlink(tree, index, path, member, limits)
    elif member.ischr() or member.isblk():
        raise _Refuse("device node refused")
    elif member.isfifo():
        raise _Refuse("fifo refused")
    else:
        raise _Refuse(f"unsupported tar entry type {member.type!r}")


def _whiteout(tree: Tree, index: LayerIndex, parent: str, base: str) -> None:
    target = base[len(WHITEOUT) :]
    if base != OPAQUE and target in ("", ".", ".."):
        raise _Refuse("invalid whiteout name")
    rel = f"{parent}/{base}" if parent else base
    tree.write_file(rel, None, 0o444)
    if base == OPAQUE:
        index.opaque.append(parent)
    else:
        index.whiteouts.append(f"{parent}/{target}" if parent else target)


def _hardlink(tree: Tree, index: LayerIndex, path: str, member: tarfile.TarInfo, limits: Limits) -> None:
    target = clean_name(member.linkname, limits.max_path)
    entry = index.entries.get(target)
    if not target or target == path or entry is None or entry[0] not in ("f", "h"):
        raise _Refuse(f"hard link to {member.linkname!r}, which is not a file of this layer")
    if not tree.real_dir(target.rpartition("/")[0], create=False):
        raise _Refuse(f"hard link target {member.linkname!r} is missing")
    tree.hardlink(path, tree.full(target))
    index.put(path, ["h", entry[1], entry[2], entry[3], target])
