"""Safe extraction of OCI layer tars into a layer directory (``layerfs``).

Every tar entry is checked before anything is written; an entry that is refused is
reported (path + reason) and never touches the disk:

* names: absolute paths, ``..`` components and over-long paths are refused;
* writes never follow a symlink out of the layer: parent directories are resolved inside
  the tree (:mod:`computeops_grid.images.tree`); the entry's own name is replaced, never
  followed;
* a hard link to a file of the same layer is made in the layer; a hard link to any other
  path is recorded (kind ``H``) and made in the flat, to a regular file of the lower layers
  (OCI layer spec, "Hardlinks": the linked file may be outside the changeset);
* device nodes and fifos are refused; setuid/setgid/sticky bits on files and
  setuid/setgid on directories are stripped (reported as neutralised);
* permissions are made readable (directories also traversable) for everyone;
* limits on entries and uncompressed bytes stop tar bombs (always fatal).

OCI whiteouts (``.wh.NAME``) and opaque markers (``.wh..wh..opq``) are kept as empty marker
files in the layer directory and *applied* (the files are gone) in the flat root filesystem.
"""

from __future__ import annotations

import enum
import logging
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from computeops_grid.images.errors import ImageError, UnsafeArchive
from computeops_grid.images.tree import Refuse, Tree

log = logging.getLogger(__name__)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class Cancelled(ImageError):
    """This layer's unpack was stopped because another layer of the same publish failed."""


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


@dataclass
class LayerIndex:
    """What one layer holds: ``entries[path] = [kind, mode, size, sha256-or-target(, target)]``.

    ``path`` is where the entry really is in ``layerfs`` (parents resolved). Kinds: ``f`` file,
    ``h`` hard link within the layer (sha256 of content, then link target), ``H`` hard link to
    a lower layer's file (``["H", 0, 0, "", target]``, nothing in ``layerfs``), ``d`` dir,
    ``l`` symlink. Whiteouts and opaque directories keep the names written in the tar.
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

    def forget_under(self, directory: str) -> None:
        """The directory ``directory`` was removed from ``layerfs``: drop what it held."""
        prefix = directory + "/"
        for path in [p for p in self.entries if p == directory or p.startswith(prefix)]:
            del self.entries[path]

    def put(self, path: str, entry: list[Any]) -> None:
        self.entries.pop(path, None)  # a later entry of the same name wins and moves to the end
        self.entries[path] = entry


def clean_name(name: str, max_path: int = 4096) -> str:
    """Normalise a tar member name to ``a/b/c``; ``""`` is the root. Raises ``Refuse``."""
    if "\x00" in name:
        raise Refuse("NUL byte in name")
    if name.startswith("/"):
        raise Refuse("absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refuse("path escapes the image with '..'")
    path = "/".join(parts)
    if len(path) > max_path:
        raise Refuse(f"path longer than {max_path} characters")
    return path


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
    stream: IO[bytes],
    dest: Path,
    *,
    limits: Limits | None = None,
    policy: Policy = Policy.FAIL,
    cancel: threading.Event | None = None,
) -> LayerIndex:
    """Extract the layer tar read from ``stream`` (plain or compressed) into ``dest``.

    Raises :class:`UnsafeArchive` on a limit, or (policy ``fail``) when any entry was refused;
    :class:`ImageError` as soon as ``cancel`` is set (another layer of the publish failed).
    """
    limits = limits or Limits()
    index = LayerIndex()
    tree = Tree(dest, on_remove_dir=index.forget_under)
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
            if cancel is not None and count % 256 == 0 and cancel.is_set():
                raise Cancelled("layer unpack cancelled: another layer of this publish failed")
            try:
                _extract(tar, member, tree, index, limits)
            except Refuse as exc:
                index.refusals.append(Refusal(member.name, str(exc)))
    check_refusals(index.refusals, policy, "layer refused")
    return index


def check_refusals(refusals: list[Refusal], policy: Policy, what: str) -> None:
    """Log every refusal; raise :class:`UnsafeArchive` under policy ``fail`` if any was not neutralised."""
    for refusal in refusals:
        log.warning("%s: %s", refusal.path, refusal.reason)
    refused = [r for r in refusals if not r.neutralised]
    if refused and policy is Policy.FAIL:
        raise UnsafeArchive(
            f"{what}: {len(refused)} unsafe entries",
            refused,
            hint="rebuild the image without them, or publish with --on-unsafe skip to leave them out",
        )


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, tree: Tree, index: LayerIndex, limits: Limits
) -> None:
    path = clean_name(member.name, limits.max_path)
    if not path:
        return  # the root directory entry itself
    parent, _, base = path.rpartition("/")
    if base.startswith(WHITEOUT):
        _whiteout(tree, index, parent, base)
    elif member.isreg():
        mode = _file_mode(member, index, path)
        real, digest = tree.write_file(path, tar.extractfile(member), mode)
        index.put(real, ["f", mode, member.size, digest])
    elif member.isdir():
        mode = _dir_mode(member, index, path)
        index.put(tree.make_dir(path, mode), ["d", mode, 0, ""])
    elif member.issym():
        if not member.linkname or "\x00" in member.linkname:
            raise Refuse("symlink with an empty target")
        index.put(tree.symlink(path, member.linkname), ["l", 0o777, 0, member.linkname])
    elif member.islnk():
        _hardlink(tree, index, path, member, limits)
    elif member.ischr() or member.isblk():
        raise Refuse("device node refused")
    elif member.isfifo():
        raise Refuse("fifo refused")
    else:
        raise Refuse(f"unsupported tar entry type {member.type!r}")


def _whiteout(tree: Tree, index: LayerIndex, parent: str, base: str) -> None:
    target = base[len(WHITEOUT) :]
    if base != OPAQUE and target in ("", ".", ".."):
        raise Refuse("invalid whiteout name")
    tree.write_file(f"{parent}/{base}" if parent else base, None, 0o444)
    if base == OPAQUE:
        index.opaque.append(parent)
    else:
        index.whiteouts.append(f"{parent}/{target}" if parent else target)


def _hardlink(tree: Tree, index: LayerIndex, path: str, member: tarfile.TarInfo, limits: Limits) -> None:
    """A link to a file of this layer is made here; any other target is left to the flat (``H``)."""
    target = clean_name(member.linkname, limits.max_path)
    if not target:
        raise Refuse("hard link to the image root")
    real_target = tree.find(target)
    entry = index.entries.get(real_target) if real_target is not None else None
    if real_target is None or entry is None:
        real = tree.place(path)
        tree.remove(real)  # this layer's own earlier entry of that name is replaced
        index.put(real, ["H", 0, 0, "", target])
        return
    if real_target == tree.find(path):
        raise Refuse("hard link to itself")
    if entry[0] not in ("f", "h"):
        raise Refuse(f"hard link to {member.linkname!r}, which is not a regular file")
    real = tree.hardlink(path, tree.full(real_target))
    index.put(real, ["h", entry[1], entry[2], entry[3], real_target])
