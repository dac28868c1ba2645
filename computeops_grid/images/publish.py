"""Atomic, incremental publish of one image into an unpacked.cern.ch-style repository.

1. Under a shared ``gc.lock`` (gc waits), stage in ``.cops/tmp/publish-*``: unpack the layers
   not yet in ``.layers/`` (digest checked while reading) and build the flat tree from hard links.
2. Under the exclusive ``commit.lock``: rename new layers and the flat into place, write the
   flat manifest (``.cops/flats/..json``: this makes the flat *committed*), the metadata, and
   last swap the public symlink. Readers see the old image or the new one, never half of one.

An image whose flat is already committed (same config digest) is not unpacked again. A crash
leaves the previous state plus staging garbage that ``gc`` removes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from computeops_grid.images.errors import ImageError
from computeops_grid.images.flat import FlatBuilder
from computeops_grid.images.layout import (
    CATALOG,
    Layout,
    hexof,
    swap_symlink,
    write_bytes_atomic,
    write_json_atomic,
)
from computeops_grid.images.locks import flock
from computeops_grid.images.reference import ImageRef
from computeops_grid.images.sources import Layer, SourceImage
from computeops_grid.images.unpack import LayerIndex, Limits, Policy, Refusal, unpack_layer

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (what, done, total)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass
class PublishResult:
    ref: ImageRef
    config_digest: str
    manifest_digest: str
    unpacked: bool
    layers_new: int = 0
    layers_reused: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": str(self.ref),
            "path": self.ref.public_path,
            "config_digest": self.config_digest,
            "manifest_digest": self.manifest_digest,
            "unpacked": self.unpacked,
            "layers_new": self.layers_new,
            "layers_reused": self.layers_reused,
            "refusals": [
                {"path": r.path, "reason": r.reason, "neutralised": r.neutralised} for r in self.refusals
            ],
            "seconds": round(self.seconds, 3),
        }


class _HashingReader:
    """Reads a blob while hashing it; :meth:`check` reads the rest and compares the digest."""

    def __init__(self, raw: IO[bytes], digest: str) -> None:
        self.raw = raw
        self.digest = digest
        self.hash = hashlib.sha256()
        self.head = b""

    def peek(self, size: int) -> bytes:
        self.head = self.read(size)
        return self.head

    def read(self, size: int = -1) -> bytes:
        if self.head:
            cut = len(self.head) if size < 0 else size
            data, self.head = self.head[:cut], self.head[cut:]
            rest = -1 if size < 0 else size - len(data)
            return data + self.read(rest) if rest != 0 else data
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def check(self) -> None:
        for chunk in iter(lambda: self.raw.read(1 << 20), b""):
            self.hash.update(chunk)
        if "sha256:" + self.hash.hexdigest() != self.digest:
            raise ImageError(f"layer {self.digest} does not match its digest (corrupt or truncated source)")


class Publisher:
    """Publishes images into the repository at ``root``. Thread-unsafe; process-safe via locks."""

    def __init__(
        self,
        root: str | Path,
        *,
        policy: Policy = Policy.FAIL,
        limits: Limits | None = None,
        lock_timeout: float = 600.0,
        progress: Progress | None = None,
    ) -> None:
        self.layout = Layout(root)
        self.policy = policy
        self.limits = limits or Limits()
        self.lock_timeout = lock_timeout
        self.progress = progress or (lambda what, done, total: None)

    def publish(self, image: SourceImage, ref: ImageRef) -> PublishResult:
        start = time.monotonic()
        self.layout.ensure()
        result = PublishResult(ref, image.config_digest, image.manifest_digest, unpacked=False)
        with flock(self.layout.gc_lock, exclusive=False, timeout=self.lock_timeout):
            if self._committed(image.config_hex):
                with flock(self.layout.commit_lock, exclusive=True, timeout=self.lock_timeout):
                    self._link(image, ref)
            else:
                staging = self.layout.new_tmp()
                try:
                    self._stage_and_commit(image, ref, staging, result)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        result.seconds = time.monotonic() - start
        log.info("published %s -> .flat/%s (unpacked=%s)", ref, image.config_hex[:12], result.unpacked)
        return result

    def _committed(self, config_hex: str) -> bool:
        return self.layout.flat_index(config_hex).is_file() and self.layout.flat(config_hex).is_dir()

    def _stage_and_commit(
        self, image: SourceImage, ref: ImageRef, staging: Path, result: PublishResult
    ) -> None:
        flat_dir = staging / "flat"
        builder = FlatBuilder(flat_dir, self.policy)
        os.chmod(flat_dir, 0o755)  # noqa: S103 - images are world-readable by design
        new_layers: dict[str, Path] = {}
        total = len(image.layers)
        for number, layer in enumerate(image.layers):
            self.progress(f"layer {number + 1}/{total} {layer.digest[7:19]}", number, total)
            layer_hex = hexof(layer.digest)
            if layer_hex in new_layers:
                layer_dir = new_layers[layer_hex]
                index = LayerIndex.from_json(
                    json.loads((layer_dir / ".metadata/cops-index.json").read_text())
                )
            elif self.layout.layer_index(layer_hex).is_file():
                layer_dir = self.layout.layer(layer_hex)
                index = _load_index(self.layout.layer_index(layer_hex))
                result.layers_reused += 1
            else:
                layer_dir = staging / "layers" / layer_hex
                index = self._unpack(image, layer, layer_dir)
                new_layers[layer_hex] = layer_dir
                result.layers_new += 1
            result.refusals += index.refusals
            builder.apply(layer_dir / "layerfs", index)
        result.refusals += builder.refusals
        self.progress("flat", total, total)
        files = builder.finish(image.config_json)
        with flock(self.layout.commit_lock, exclusive=True, timeout=self.lock_timeout):
            self._commit(image, ref, new_layers, flat_dir, files)
        result.unpacked = True

    def _unpack(self, image: SourceImage, layer: Layer, layer_dir: Path) -> LayerIndex:
        with image.open_blob(layer.digest) as raw:
            reader = _HashingReader(raw, layer.digest)
            if reader.peek(4) == _ZSTD_MAGIC:
                raise ImageError(
                    f"layer {layer.digest} is zstd-compressed, which this publisher does not read",
                    hint="convert it: skopeo copy --dest-compress-format gzip SRC oci-archive:FILE",
                )
            stream = cast(IO[bytes], reader)
            index = unpack_layer(stream, layer_dir / "layerfs", limits=self.limits, policy=self.policy)
            reader.check()
        meta = layer_dir / ".metadata"
        meta.mkdir(parents=True)
        write_json_atomic(meta / "cops-index.json", index.to_json())
        layers_json = [
            {"id": hexof(layer.digest), "compressed-diff-digest": layer.digest, "size": layer.size}
        ]
        write_json_atomic(meta / "layers.json", layers_json)
        (layer_dir / CATALOG).touch(0o644)
        os.chmod(layer_dir, 0o755)  # noqa: S103 - images are world-readable by design
        return index

    def _commit(
        self,
        image: SourceImage,
        ref: ImageRef,
        new_layers: dict[str, Path],
        flat_dir: Path,
        files: dict[str, list[Any]],
    ) -> None:
        for layer_hex, staged in new_layers.items():
            target = self.layout.layer(layer_hex)
            if self.layout.layer_index(layer_hex).is_file():
                continue  # a concurrent publisher committed the same layer first
            if target.exists():
                shutil.rmtree(target)  # leftover without index: incomplete, replace it
            target.parent.mkdir(parents=True, exist_ok=True)
            (target.parent / CATALOG).touch(0o644)
            os.rename(staged, target)
        for layer in image.layers:
            self._add_origin(hexof(layer.digest), image.config_digest)
        target = self.layout.flat(image.config_hex)
        if not self._committed(image.config_hex):
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(flat_dir, target)
            write_json_atomic(self.layout.flat_index(image.config_hex), self._flat_record(image, files))
        self._link(image, ref)

    def _flat_record(self, image: SourceImage, files: dict[str, list[Any]]) -> dict[str, Any]:
        return {
            "config_digest": image.config_digest,
            "manifest_digest": image.manifest_digest,
            "manifest": image.manifest.decode(),
            "config": image.config.decode(),
            "layers": [hexof(layer.digest) for layer in image.layers],
            "files": files,
        }

    def _add_origin(self, layer_hex: str, config_digest: str) -> None:
        path = self.layout.layer(layer_hex) / ".metadata" / "origin.json"
        origin: list[str] = []
        if path.is_file():
            origin = list(json.loads(path.read_text()).get("origin", []))
        if config_digest not in origin:
            write_json_atomic(path, {"origin": [*origin, config_digest]})

    def _link(self, image: SourceImage, ref: ImageRef) -> None:
        meta = self.layout.metadata(ref)
        write_bytes_atomic(meta / "manifest.json", image.manifest)
        write_bytes_atomic(meta / "config.json", image.config)
        write_bytes_atomic(meta / "digest", image.manifest_digest.encode() + b"\n")
        link = self.layout.public(ref)
        try:
            swap_symlink(link, self.layout.link_target(ref, image.config_hex))
        except FileExistsError:
            raise ImageError(
                f"{link} exists and is not a symlink; refusing to replace it",
                hint="remove it by hand if it is not an image",
            ) from None


def _load_index(path: Path) -> LayerIndex:
    return LayerIndex.from_json(json.loads(path.read_text()))
