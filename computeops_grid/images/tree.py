"""A directory tree written only through checked operations (layer directories and flat trees).

Paths are image paths (``a/b/c``, already cleaned of ``..`` and leading ``/``). The *parent*
of every entry is resolved the way a container runtime applies a layer (containerd's
``fs.RootPath``, moby's chrooted unpack): a symlink met on the way is followed **inside the
tree** (an absolute target starts again at the tree's root, as it would in the container),
and a target that climbs above the root with ``..`` is refused, as are link loops and parents
that are not directories. The entry's own name is never followed: whatever is there is
removed first (OCI "changeset over existing files") and the new entry is created with
``O_EXCL | O_NOFOLLOW``. Nothing is ever written in place, so inodes shared by hard links
(layer copies linked into flats) are never modified.

To save system calls the tree remembers the real directories it has seen or made and how
each parent name resolved; removing a directory or a symlink forgets those answers.
Creation is tried first and an existing entry is removed only when the kernel says it exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40  # as the kernel's MAXSYMLINKS


class Refuse(Exception):
    """An entry is refused (unsafe or impossible); the message says why."""


def current_umask() -> int | None:
    """The process umask read without changing it (Linux ``/proc``), or None when unknown."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


class Tree:
    """Writes under ``root``; see the module docstring for the rules. Not thread-safe."""

    def __init__(self, root: Path, on_remove_dir: Callable[[str], None] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = str(root)
        self.on_remove_dir = on_remove_dir  # told the real path of each directory removed
        self._dirs: dict[str, int] = {"": -1}  # real directory (no symlink on the way) -> mode
        self._parents: dict[str, str] = {"": ""}  # directory name as written -> real directory
        umask = current_umask()
        self._umask = 0o7777 if umask is None else umask  # unknown: always chmod

    def full(self, real: str) -> str:
        return os.path.join(self.root, real) if real else self.root

    # -- resolution -------------------------------------------------------------------------

    def resolve_dir(self, rel: str, *, create: bool) -> str | None:
        """The real directory that ``rel`` names, following symlinks inside the tree only.

        Missing directories are made (0755) when ``create``, else the answer is None.
        """
        known = self._parents.get(rel)
        if known is not None:
            return known
        done: list[str] = []
        todo = rel.split("/")
        todo.reverse()
        hops = 0
        while todo:
            comp = todo.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if not done:
                    raise Refuse(f"a symlink in {rel!r} leads out of the image root")
                done.pop()
                continue
            cur = "/".join((*done, comp))
            target = self._step(cur, create=create)
            if target is None:
                return None
            if target == "":
                done.append(comp)
                continue
            hops += 1
            if hops > MAX_SYMLINKS:
                raise Refuse(f"too many levels of symlinks resolving {rel!r}")
            if target.startswith("/"):
                done = []  # absolute targets are relative to the image root, as in the container
            todo.extend(reversed(target.split("/")))
        real = "/".join(done)
        self._parents[rel] = real
        return real

    def _step(self, cur: str, *, create: bool) -> str | None:
        """``""`` if ``cur`` is (now) a real directory, its target if a symlink, None if missing."""
        if cur in self._dirs:
            return ""
        full = self.full(cur)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            if not create:
                return None
            self._mkdir(full, 0o755)
            self._dirs[cur] = 0o755
            return ""
        if stat.S_ISDIR(st.st_mode):
            self._dirs[cur] = stat.S_IMODE(st.st_mode)
            return ""
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(full)
            if not target:
                raise Refuse(f"{cur!r} is an empty symlink")
            return target
        raise Refuse(f"parent {cur!r} is not a directory")

    def find(self, rel: str) -> str | None:
        """Real path of entry ``rel`` (its parent resolved, its name kept); None if no parent."""
        parent, _, base = rel.rpartition("/")
        real_parent = self.resolve_dir(parent, create=False)
        if real_parent is None:
            return None
        return f"{real_parent}/{base}" if real_parent else base

    def place(self, rel: str) -> str:
        """Real path of entry ``rel``, its missing parent directories made."""
        parent, _, base = rel.rpartition("/")
        real_parent = self.resolve_dir(parent, create=True)
        assert real_parent is not None
        return f"{real_parent}/{base}" if real_parent else base

    def lexists(self, rel: str) -> bool:
        real = self.find(rel)
        return real is not None and os.path.lexists(self.full(real))

    # -- writing ----------------------------------------------------------------------------

    def remove(self, real: str) -> None:
        """Remove whatever is at real path ``real`` (a directory with all it holds)."""
        full = self.full(real)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(full)
            prefix = real + "/"
            self._dirs = {d: m for d, m in self._dirs.items() if d != real and not d.startswith(prefix)}
            self._parents = {"": ""}
            if self.on_remove_dir is not None:
                self.on_remove_dir(real)
        else:
            os.unlink(full)
            if stat.S_ISLNK(st.st_mode):
                self._parents = {"": ""}

    def make_dir(self, rel: str, mode: int) -> str:
        """Directory ``rel`` with ``mode`` (an existing directory only gets the mode)."""
        real = self.place(rel)
        full = self.full(real)
        known = self._dirs.get(real)
        if known is not None:
            if known != mode:
                os.chmod(full, mode)
                self._dirs[real] = mode
            return real
        try:
            self._mkdir(full, mode)
        except FileExistsError:
            if stat.S_ISDIR(os.lstat(full).st_mode):
                os.chmod(full, mode)
            else:
                self.remove(real)
                self._mkdir(full, mode)
        self._dirs[real] = mode
        return real

    def _mkdir(self, full: str, mode: int) -> None:
        os.mkdir(full, mode)
        if mode & self._umask:
            os.chmod(full, mode)

    def write_file(self, rel: str, src: IO[bytes] | None, mode: int, data: bytes = b"") -> tuple[str, str]:
        """Create ``rel`` from ``src`` (read to the end) or ``data``; return (real path, sha256)."""
        real = self.place(rel)
        full = self.full(real)
        try:
            fd = os.open(full, _OPEN_FLAGS, mode & 0o777)
        except FileExistsError:
            self.remove(real)
            fd = os.open(full, _OPEN_FLAGS, mode & 0o777)
        digest = hashlib.sha256()
        try:
            chunk = data if src is None else src.read(_CHUNK)
            while chunk:
                digest.update(chunk)
                _write_all(fd, chunk)
                chunk = src.read(_CHUNK) if src is not None else b""
            if mode & (self._umask | 0o7000):
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return real, digest.hexdigest()

    def symlink(self, rel: str, target: str) -> str:
        real = self.place(rel)
        self._create(real, lambda full: os.symlink(target, full))
        return real

    def hardlink(self, rel: str, source_full: str) -> str:
        """Hard link ``rel`` to the file at host path ``source_full`` (never through a symlink)."""
        real = self.place(rel)
        self._create(real, lambda full: os.link(source_full, full, follow_symlinks=False))
        return real

    def _create(self, real: str, make: Callable[[str], None]) -> None:
        full = self.full(real)
        try:
            make(full)
        except FileExistsError:
            self.remove(real)
            make(full)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
