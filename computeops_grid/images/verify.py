"""``image verify``: does the repository content match its digests?

For every public name (or the ones asked for): the symlink points to a committed flat;
the stored config and manifest match their digests; every entry of the flat matches the
flat manifest written at publish time (kind, mode, size, sha256 of content, link target)
and nothing else is there; each layer the image uses is present and its files match the
layer index. ``fast=True`` skips hashing file contents (sizes and modes still compared).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.images.errors import ImageNotFound
from computeops_grid.images.flat import describe, entry_of
from computeops_grid.images.layout import Layout
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.repository import flat_record, public_links


@dataclass
class VerifyReport:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "problems": self.problems}


def verify(root: str | Path, names: list[str] | None = None, *, fast: bool = False) -> VerifyReport:
    layout = Layout(root)
    links = public_links(layout)
    wanted = links
    if names:
        paths = [parse_ref(n).public_path for n in names]
        missing = [p for p in paths if p not in links]
        if missing:
            raise ImageNotFound(f"not published in {layout.root}: {', '.join(missing)}")
        wanted = {p: links[p] for p in paths}
    report = VerifyReport()
    seen_layers: set[str] = set()
    for path, config_hex in sorted(wanted.items()):
        report.checked.append(path)
        _verify_image(layout, path, config_hex, report, seen_layers, fast=fast)
    return report


def _verify_image(
    layout: Layout, path: str, config_hex: str, report: VerifyReport, seen: set[str], *, fast: bool
) -> None:
    flat = layout.flat(config_hex)
    record = flat_record(layout, config_hex)
    if not flat.is_dir() or record is None:
        report.problems.append(f"{path}: points to an uncommitted or missing flat {config_hex[:12]}")
        return
    if os.path.realpath(layout.root / path) != str(flat.resolve()):
        report.problems.append(f"{path}: symlink does not resolve to {flat}")
    if "sha256:" + hashlib.sha256(record["config"].encode()).hexdigest() != f"sha256:{config_hex}":
        report.problems.append(f"{path}: stored config does not match digest {config_hex[:12]}")
    if "sha256:" + hashlib.sha256(record["manifest"].encode()).hexdigest() != record["manifest_digest"]:
        report.problems.append(f"{path}: stored manifest does not match its digest")
    _compare(f"{path}: ", flat, record["files"], report, fast)
    for layer_hex in record["layers"]:
        if layer_hex not in seen:
            seen.add(layer_hex)
            _verify_layer(layout, path, layer_hex, report, fast)


def _verify_layer(layout: Layout, path: str, layer_hex: str, report: VerifyReport, fast: bool) -> None:
    index_file = layout.layer_index(layer_hex)
    if not index_file.is_file():
        report.problems.append(f"{path}: layer {layer_hex[:12]} is missing")
        return
    entries = json.loads(index_file.read_text())["entries"]
    layerfs = layout.layer(layer_hex) / "layerfs"
    expected = {
        p: ["f", *e[1:4]] if e[0] == "h" else e
        for p, e in entries.items()
        if e[0] != "H"  # hard links to lower layers live in the flats only
    }
    prefix = f"{path}: layer {layer_hex[:12]}: "
    for rel, entry in expected.items():
        _compare_entry(prefix, layerfs, rel, entry, report, fast=fast)


def _compare(prefix: str, root: Path, files: dict[str, list[Any]], report: VerifyReport, fast: bool) -> None:
    actual = set(describe(root, dict.fromkeys(files, "-")))
    for extra in sorted(actual - set(files))[:50]:
        report.problems.append(f"{prefix}unexpected entry {extra}")
    for rel, entry in files.items():
        _compare_entry(prefix, root, rel, entry, report, fast=fast)


def _compare_entry(
    prefix: str, root: Path, rel: str, entry: list[Any], report: VerifyReport, *, fast: bool
) -> None:
    full = os.path.join(root, rel)
    if not os.path.lexists(full):
        report.problems.append(f"{prefix}missing {rel}")
        return
    got = entry_of(full, "-" if fast else None)
    want = list(entry)
    if fast and want[0] == "f":
        want[3] = "-"
    if got != want:
        report.problems.append(f"{prefix}{rel} differs: expected {want}, found {got}")
