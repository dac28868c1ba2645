"""Reading and maintaining a repository: ``list``, ``rm`` and ``gc``.

``gc`` takes ``gc.lock`` exclusively (it waits for running publishes), then removes:
staging dirs of crashed publishes, flats that are not committed or not referenced by any
public symlink, flat manifests without a flat, layers no committed flat uses, metadata of
names without a symlink, and leftover temporary symlinks. It also rewrites the metadata of
a name whose publish was interrupted between the metadata write and the symlink swap.

Removal is atomic for readers: a name goes with the unlink of its symlink, and a flat or a
layer is first renamed into ``.cops/trash/`` (one rename: its path is there whole, or gone)
and only then deleted. Where a rename cannot move it (a CVMFS transaction's overlayfs union
refuses to rename lower directories) it is deleted in place: there the transaction itself
is what readers see atomically.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.images.errors import ImageNotFound
from computeops_grid.images.layout import HIDDEN, Layout, write_bytes_atomic
from computeops_grid.images.locks import flock
from computeops_grid.images.reference import ImageRef, parse_ref

log = logging.getLogger(__name__)


@dataclass
class ImageInfo:
    path: str  # public path, e.g. registry.hub.docker.com/library/busybox:latest
    config_hex: str
    manifest_digest: str = ""
    layers: int = 0
    committed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": "docker://" + self.path.replace(":sha256:", "@sha256:"),
            "path": self.path,
            "config_digest": f"sha256:{self.config_hex}",
            "manifest_digest": self.manifest_digest,
            "layers": self.layers,
            "committed": self.committed,
        }


@dataclass
class GcReport:
    removed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def public_links(layout: Layout) -> dict[str, str]:
    """``{public path: config hex}`` of every public symlink into ``.flat/``."""
    result: dict[str, str] = {}
    if not layout.root.is_dir():
        return result
    for top in sorted(os.listdir(layout.root)):
        if top in HIDDEN or top.startswith("."):
            continue
        for dirpath, dirnames, filenames in os.walk(layout.root / top):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                if not os.path.islink(full) or name.startswith("."):
                    continue
                target = os.readlink(full)
                if "/.flat/" in f"/{target}":
                    rel = os.path.relpath(full, layout.root)
                    result[rel] = target.rstrip("/").rsplit("/", 1)[-1]
    return result


def flat_record(layout: Layout, config_hex: str) -> dict[str, Any] | None:
    path = layout.flat_index(config_hex)
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def list_images(root: str | Path) -> list[ImageInfo]:
    layout = Layout(root)
    images = []
    for path, config_hex in public_links(layout).items():
        record = flat_record(layout, config_hex)
        info = ImageInfo(path, config_hex, committed=record is not None and layout.flat(config_hex).is_dir())
        if record is not None:
            info.manifest_digest = record["manifest_digest"]
            info.layers = len(record["layers"])
        images.append(info)
    return images


def remove(root: str | Path, name: str, *, timeout: float = 600.0) -> ImageRef:
    """Remove a public name and its metadata; its flat and layers go at the next ``gc``."""
    layout = Layout(root)
    ref = parse_ref(name)
    if not layout.public(ref).is_symlink():
        raise ImageNotFound(f"no image {ref.public_path} in {layout.root}", hint="see cops-grid image list")
    remove_names(root, [ref], timeout=timeout)
    return ref


def remove_names(root: str | Path, refs: list[ImageRef], *, timeout: float = 600.0) -> None:
    """Remove public names (symlink first, then metadata) under one commit lock."""
    layout = Layout(root)
    layout.ensure()
    with flock(layout.commit_lock, exclusive=True, timeout=timeout):
        for ref in refs:
            link = layout.public(ref)
            if link.is_symlink():
                link.unlink()
            shutil.rmtree(layout.metadata(ref), ignore_errors=True)
            _prune_empty(link.parent, layout.root)
            _prune_empty(layout.metadata(ref).parent, layout.root / ".metadata")
            log.info("removed %s", ref.public_path)


def _prune_empty(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def gc(root: str | Path, *, timeout: float = 600.0) -> GcReport:
    layout = Layout(root)
    report = GcReport()
    if not layout.root.is_dir():
        return report
    layout.ensure()
    with (
        flock(layout.gc_lock, exclusive=True, timeout=timeout),
        flock(layout.commit_lock, exclusive=True, timeout=timeout),
    ):
        for entry in sorted(layout.tmp.iterdir()):
            _remove(layout, entry, report)
        links = public_links(layout)
        _gc_stale_links(layout, report)
        used_layers = _gc_flats(layout, set(links.values()), report)
        _gc_layers(layout, used_layers, report)
        _gc_metadata(layout, links, report)
        shutil.rmtree(layout.cops / "trash", ignore_errors=True)
    return report


def _remove(layout: Layout, path: Path, report: GcReport) -> None:
    if path.is_dir() and not path.is_symlink():
        _discard(layout, path)
    else:
        path.unlink(missing_ok=True)
    report.removed.append(str(path))
    log.info("gc: removed %s", path)


def _discard(layout: Layout, directory: Path) -> None:
    """Move ``directory`` out of sight in one rename; gc deletes it (in place if it cannot move)."""
    trash = layout.cops / "trash"
    trash.mkdir(exist_ok=True)
    try:
        os.rename(directory, tempfile.mkdtemp(prefix=f"{directory.name[:16]}-", dir=trash))
    except OSError:
        shutil.rmtree(directory)


def _gc_stale_links(layout: Layout, report: GcReport) -> None:
    for top in os.listdir(layout.root):
        if top in HIDDEN or top.startswith("."):
            continue
        for dirpath, _dirs, files in os.walk(layout.root / top):
            for name in files:
                if name.startswith(".") and ".tmp-" in name:
                    _remove(layout, Path(dirpath) / name, report)


def _gc_flats(layout: Layout, referenced: set[str], report: GcReport) -> set[str]:
    used: set[str] = set()
    for hh in _hex_dirs(layout.root / ".flat"):
        for flat in sorted(hh.iterdir()):
            record = flat_record(layout, flat.name)
            if flat.name in referenced and record is not None:
                used.update(record["layers"])
            else:
                _remove(layout, flat, report)
                layout.flat_index(flat.name).unlink(missing_ok=True)
    for hh in _hex_dirs(layout.cops / "flats"):
        for index in sorted(hh.iterdir()):
            if not layout.flat(index.name.removesuffix(".json")).is_dir():
                _remove(layout, index, report)
    return used


def _gc_layers(layout: Layout, used: set[str], report: GcReport) -> None:
    for hh in _hex_dirs(layout.root / ".layers"):
        for layer in sorted(hh.iterdir()):
            if layer.name.startswith("."):
                continue
            if layer.name not in used or not layout.layer_index(layer.name).is_file():
                _remove(layout, layer, report)


def _gc_metadata(layout: Layout, links: dict[str, str], report: GcReport) -> None:
    meta_root = layout.root / ".metadata"
    for dirpath, dirnames, filenames in os.walk(meta_root):
        if "manifest.json" not in filenames:
            continue
        rel = os.path.relpath(dirpath, meta_root)
        dirnames.clear()
        if rel not in links:
            _remove(layout, Path(dirpath), report)
            continue
        record = flat_record(layout, links[rel])
        digest_file = Path(dirpath) / "digest"
        current = digest_file.read_text().strip() if digest_file.is_file() else ""
        if record is not None and current != record["manifest_digest"]:
            write_bytes_atomic(Path(dirpath) / "manifest.json", record["manifest"].encode())
            write_bytes_atomic(Path(dirpath) / "config.json", record["config"].encode())
            write_bytes_atomic(digest_file, record["manifest_digest"].encode() + b"\n")
            report.repaired.append(dirpath)


def _hex_dirs(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and len(p.name) == 2)
