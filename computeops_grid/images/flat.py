"""Build a flat root filesystem from unpacked layers (hard links into ``layerfs``), and describe it.

Layers are applied in order: first the layer's opaque directories are emptied and its
whiteouts removed (they only hide lower layers), then its entries are linked in. Files
are hard links to the layer's copy, so a flat costs no extra data; nothing is ever written
in place, so the shared inodes are never modified. Parent directories are resolved inside
the flat (:class:`~computeops_grid.images.tree.Tree`): ``bin/x`` lands in ``usr/bin/x``
when a lower layer made ``bin -> usr/bin``. A hard link to a lower layer's file (kind ``H``)
is made here, to a regular file already in the flat.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

from computeops_grid.images.errors import UnsafeArchive
from computeops_grid.images.singularity import dotfiles
from computeops_grid.images.tree import Refuse, Tree
from computeops_grid.images.unpack import LayerIndex, Policy, Refusal

log = logging.getLogger(__name__)

SKIP_NAMES = frozenset({".cvmfscatalog"})


class FlatBuilder:
    """Applies layers onto ``root``; collects refusals and the sha256 of every file it links."""

    def __init__(self, root: Path, policy: Policy = Policy.FAIL) -> None:
        self.tree = Tree(root)
        self.root = root
        self.policy = policy
        self.digests: dict[str, str] = {}
        self.refusals: list[Refusal] = []

    def apply(self, layerfs: Path, index: LayerIndex) -> None:
        for directory in index.opaque:
            self._guard(directory, self._opaque, directory)
        for path in index.whiteouts:
            self._guard(path, self._whiteout, path)
        for path, entry in index.entries.items():
            self._guard(path, self._add, layerfs, path, entry)
        refused = [r for r in self.refusals if not r.neutralised]
        if refused and self.policy is Policy.FAIL:
            raise UnsafeArchive(f"flat image refused: {len(refused)} unsafe entries", refused)

    def _guard(self, path: str, func: Any, *args: Any) -> None:
        try:
            func(*args)
        except Refuse as exc:
            log.warning("%s: %s", path, exc)
            self.refusals.append(Refusal(path, str(exc)))

    def _opaque(self, directory: str) -> None:
        real = self.tree.resolve_dir(directory, create=False)
        if real is None:
            return
        for child in os.listdir(self.tree.full(real)):
            self.tree.remove(f"{real}/{child}" if real else child)

    def _whiteout(self, path: str) -> None:
        real = self.tree.find(path)
        if real is not None:
            self.tree.remove(real)

    def _add(self, layerfs: Path, path: str, entry: list[Any]) -> None:
        kind = entry[0]
        if kind == "d":
            self.tree.make_dir(path, entry[1])
        elif kind in ("f", "h"):
            real = self.tree.hardlink(path, os.path.join(layerfs, path))
            self.digests[real] = entry[3]
        elif kind == "l":
            self.tree.symlink(path, entry[3])
        elif kind == "H":
            self._lower_link(path, entry[4])

    def _lower_link(self, path: str, target: str) -> None:
        """Hard link ``path`` to ``target``, a regular file the lower layers put in the flat."""
        real_target = self.tree.find(target)
        full = self.tree.full(real_target) if real_target is not None else ""
        try:
            regular = real_target is not None and stat.S_ISREG(os.lstat(full).st_mode)
        except FileNotFoundError:
            regular = False
        if not regular:
            raise Refuse(f"hard link to {target!r}, which is not a regular file of the image")
        if self.tree.find(path) == real_target:
            raise Refuse("hard link to itself")
        digest = self.digests.get(real_target or "") or sha256_file(full)
        self.digests[self.tree.hardlink(path, full)] = digest

    def finish(self, config: dict[str, Any]) -> dict[str, list[Any]]:
        """Add the Singularity/Apptainer dotfiles, then return the manifest of the whole tree."""
        for rel, kind, mode, data in dotfiles(config):
            try:
                self._dotfile(rel, kind, mode, data)
            except Refuse as exc:
                log.info("dotfile %s not added: %s", rel, exc)
        return describe(self.root, self.digests)

    def _dotfile(self, rel: str, kind: str, mode: int, data: str) -> None:
        exists = self.tree.lexists(rel)
        if kind == "d":
            if not exists:
                self.tree.resolve_dir(rel, create=True)
        elif kind == "l":
            if not exists:
                self.tree.symlink(rel, data)
        elif kind == "f" or (kind == "f?" and not exists):
            real, digest = self.tree.write_file(rel, None, mode, data.encode())
            self.digests[real] = digest


def describe(root: Path, digests: dict[str, str] | None = None) -> dict[str, list[Any]]:
    """``{path: [kind, mode, size, sha256-or-target]}`` of every entry under ``root``.

    File hashes come from ``digests`` when known (computed while unpacking), else are computed.
    """
    result: dict[str, list[Any]] = {}
    known = digests or {}
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = os.path.relpath(dirpath, base)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        for name in dirnames + filenames:
            if name in SKIP_NAMES:
                continue
            rel = prefix + name
            result[rel] = entry_of(os.path.join(dirpath, name), known.get(rel))
    return result


def entry_of(full: str, digest: str | None = None) -> list[Any]:
    st = os.lstat(full)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return ["d", mode, 0, ""]
    if stat.S_ISLNK(st.st_mode):
        return ["l", 0o777, 0, os.readlink(full)]
    if stat.S_ISREG(st.st_mode):
        return ["f", mode, st.st_size, digest or sha256_file(full)]
    return ["?", mode, 0, ""]


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
