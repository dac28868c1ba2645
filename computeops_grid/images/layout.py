"""Paths inside an image repository, mirroring DUCC's layout of /cvmfs/unpacked.cern.ch.

::

    <root>/<registry>/<repository>:<tag>        relative symlink -> .flat/<hh>/<config-hex>
    <root>/.flat/<hh>/<config-hex>/             flat root filesystem (whiteouts applied)
    <root>/.layers/<hh>/<layer-hex>/layerfs/    one unpacked layer, shared between images
    <root>/.layers/<hh>/<layer-hex>/.metadata/  origin.json, layers.json, cops-index.json
    <root>/.metadata/<registry>/<repository>:<tag>/manifest.json (+ config.json, digest)
    <root>/.cops/flats/<hh>/<config-hex>.json   per-flat file manifest (hashes) = "committed"
    <root>/.cops/tmp/                           staging of running publishes (gc removes leftovers)
    <root>/.cops/{gc,commit}.lock               publisher locks
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from computeops_grid.images.reference import ImageRef

HIDDEN = (".flat", ".layers", ".metadata", ".cops", ".chains", ".dirty-chains", "podmanStore")
CATALOG = ".cvmfscatalog"


def hexof(digest: str) -> str:
    """``sha256:abc...`` -> ``abc...`` (DUCC stores digests without the prefix)."""
    return digest.split(":", 1)[1] if ":" in digest else digest


class Layout:
    """Computes every path of a repository rooted at ``root``. Creates nothing unless asked."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        self.cops = self.root / ".cops"
        self.tmp = self.cops / "tmp"
        self.gc_lock = self.cops / "gc.lock"
        self.commit_lock = self.cops / "commit.lock"

    def flat(self, config_hex: str) -> Path:
        return self.root / ".flat" / config_hex[:2] / config_hex

    def flat_index(self, config_hex: str) -> Path:
        return self.cops / "flats" / config_hex[:2] / f"{config_hex}.json"

    def layer(self, layer_hex: str) -> Path:
        return self.root / ".layers" / layer_hex[:2] / layer_hex

    def layer_index(self, layer_hex: str) -> Path:
        return self.layer(layer_hex) / ".metadata" / "cops-index.json"

    def public(self, ref: ImageRef) -> Path:
        return self.root / ref.public_path

    def metadata(self, ref: ImageRef) -> Path:
        return self.root / ".metadata" / ref.public_path

    def link_target(self, ref: ImageRef, config_hex: str) -> str:
        """Relative symlink target, as DUCC's ``CreateSymlinkIntoCVMFS`` writes it."""
        depth = ref.public_path.count("/")
        return "/".join([".."] * depth + [".flat", config_hex[:2], config_hex])

    def ensure(self) -> None:
        """Create the skeleton (idempotent), with the CVMFS nested-catalog markers."""
        for sub in (self.root / ".flat", self.root / ".layers", self.root / ".metadata", self.tmp):
            sub.mkdir(parents=True, exist_ok=True)
        for marker in (self.root / ".flat" / CATALOG, self.root / ".layers" / CATALOG):
            if not marker.exists():
                marker.touch(0o644)

    def new_tmp(self) -> Path:
        self.ensure()
        return Path(tempfile.mkdtemp(prefix="publish-", dir=self.tmp))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to ``path`` and rename it into place: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"), sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def swap_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (new symlink renamed over the old one)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink")
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
