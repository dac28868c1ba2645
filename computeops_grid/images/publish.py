"""Atomic, incremental publish of one image into an unpacked.cern.ch-style repository.

1. Under a shared ``gc.lock`` (gc waits), stage in ``.cops/tmp/publish-*``: unpack the layers
   not yet in ``.layers/`` (each read once: digest checked while inflating; several layers at
   once, in threads) and build the flat tree from hard links, layer after layer as each is ready.
2. Under the exclusive ``commit.lock``: rename new layers and the flat into place, write the
   flat manifest (``.cops/flats/..json``: this makes the flat *committed*), the metadata, and
   last swap the public symlink. Readers see the old image or the new one, never half of one.

An image whose flat is already committed (same config digest) is not unpacked again. A crash
leaves the previous state plus staging garbage that ``gc`` removes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
from computeops_grid.images.provenance import SourceRecord, write_record
from computeops_grid.images.reference import ImageRef
from computeops_grid.images.sources import Layer, SourceImage
from computeops_grid.images.streams import LayerStream
from computeops_grid.images.unpack import Cancelled, LayerIndex, Limits, Policy, Refusal, unpack_layer

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (what, done, total)
MAX_WORKERS = 4  # layers unpacked at once


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

    def publish(self, image: SourceImage, ref: ImageRef, record: SourceRecord | None = None) -> PublishResult:
        """Publish ``image`` as ``ref``; ``record`` (a wishlist sync's) goes in its metadata."""
        start = time.monotonic()
        self.layout.ensure()
        result = PublishResult(ref, image.config_digest, image.manifest_digest, unpacked=False)
        with flock(self.layout.gc_lock, exclusive=False, timeout=self.lock_timeout):
            if self._committed(image.config_hex):
                with flock(self.layout.commit_lock, exclusive=True, timeout=self.lock_timeout):
                    self._link(image, ref, record)
            else:
                staging = self.layout.new_tmp()
                try:
                    self._stage_and_commit(image, ref, staging, result, record)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        result.seconds = time.monotonic() - start
        log.info("published %s -> .flat/%s (unpacked=%s)", ref, image.config_hex[:12], result.unpacked)
        return result

    def _committed(self, config_hex: str) -> bool:
        return self.layout.flat_index(config_hex).is_file() and self.layout.flat(config_hex).is_dir()

    def _stage_and_commit(
        self,
        image: SourceImage,
        ref: ImageRef,
        staging: Path,
        result: PublishResult,
        record: SourceRecord | None,
    ) -> None:
        flat_dir = staging / "flat"
        builder = FlatBuilder(flat_dir, self.policy)
        os.chmod(flat_dir, 0o755)  # noqa: S103 - images are world-readable by design
        new_layers: dict[str, Path] = {}
        for layer in image.layers:
            layer_hex = hexof(layer.digest)
            if layer_hex not in new_layers and not self.layout.layer_index(layer_hex).is_file():
                new_layers[layer_hex] = staging / "layers" / layer_hex
        result.layers_new = len(new_layers)
        result.layers_reused = len({hexof(lay.digest) for lay in image.layers}) - len(new_layers)
        cancel = threading.Event()
        workers = max(1, min(MAX_WORKERS, len(new_layers)))
        with ThreadPoolExecutor(workers, thread_name_prefix="cops-unpack") as pool:
            by_digest = {lay.digest: lay for lay in image.layers}
            futures = {
                layer_hex: pool.submit(self._unpack, image, by_digest[f"sha256:{layer_hex}"], path, cancel)
                for layer_hex, path in new_layers.items()
            }
            for future in futures.values():  # the first layer to fail stops the others
                future.add_done_callback(lambda done: _cancel_on_error(done, cancel))
            try:
                self._apply_all(image, builder, new_layers, futures, result)
            except BaseException as exc:
                cancel.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise _first_error(exc, futures) from None
        result.refusals += builder.refusals
        self.progress("flat", len(image.layers), len(image.layers))
        files = builder.finish(image.config_json)
        with flock(self.layout.commit_lock, exclusive=True, timeout=self.lock_timeout):
            self._commit(image, ref, new_layers, flat_dir, files, record=record)
        result.unpacked = True

    def _apply_all(
        self,
        image: SourceImage,
        builder: FlatBuilder,
        new_layers: dict[str, Path],
        futures: dict[str, Future[LayerIndex]],
        result: PublishResult,
    ) -> None:
        """Apply the layers onto the flat in order, each as soon as its unpack is done."""
        total = len(image.layers)
        for number, layer in enumerate(image.layers):
            self.progress(f"layer {number + 1}/{total} {layer.digest[7:19]}", number, total)
            layer_hex = hexof(layer.digest)
            if layer_hex in futures:
                layer_dir, index = new_layers[layer_hex], futures[layer_hex].result()
            else:
                layer_dir = self.layout.layer(layer_hex)
                index = _load_index(self.layout.layer_index(layer_hex))
            result.refusals += index.refusals
            builder.apply(layer_dir / "layerfs", index)

    def _unpack(
        self, image: SourceImage, layer: Layer, layer_dir: Path, cancel: threading.Event
    ) -> LayerIndex:
        with image.open_blob(layer.digest) as raw:
            stream = LayerStream(raw, layer.digest)
            index = unpack_layer(
                cast(IO[bytes], stream),
                layer_dir / "layerfs",
                limits=self.limits,
                policy=self.policy,
                cancel=cancel,
            )
            stream.check()
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
        *,
        record: SourceRecord | None,
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
        self._link(image, ref, record)

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

    def _link(self, image: SourceImage, ref: ImageRef, record: SourceRecord | None) -> None:
        meta = self.layout.metadata(ref)
        write_bytes_atomic(meta / "manifest.json", image.manifest)
        write_bytes_atomic(meta / "config.json", image.config)
        write_bytes_atomic(meta / "digest", image.manifest_digest.encode() + b"\n")
        if record is not None:
            write_record(self.layout, ref, record)
        else:
            (meta / "source.json").unlink(missing_ok=True)  # published by hand now: no wishlist owns it
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


def _cancel_on_error(future: Future[LayerIndex], cancel: threading.Event) -> None:
    if not future.cancelled() and future.exception() is not None:
        cancel.set()


def _first_error(current: BaseException, futures: dict[str, Future[LayerIndex]]) -> BaseException:
    """The error that stopped the publish: a layer's own failure, not a layer cancelled because of it."""
    if not isinstance(current, Cancelled):
        return current
    for future in futures.values():
        error = None if future.cancelled() else future.exception()
        if error is not None and not isinstance(error, Cancelled):
            return error
    return current
