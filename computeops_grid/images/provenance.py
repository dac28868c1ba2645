"""Where a published name came from: ``.metadata/<registry>/<repo>:<tag>/source.json``.

Written by a wishlist sync next to DUCC's ``manifest.json`` (atomically, before the public
symlink is swapped)::

    {"name": "docker://reg/repo:tag", "source": "https://reg/repo:tag",
     "digest": "sha256:<what the registry gives for the tag>",
     "config_digest": "sha256:<the flat it was published as>",
     "wishlists": ["/abs/path/of/each/wishlist/that/lists/it.yaml"]}

``digest`` is compared with the registry's ``HEAD`` answer: equal, and the symlink still points
to ``config_digest``'s committed flat, means unchanged (nothing downloaded). ``wishlists`` says
which wishlists own the name: a sync removes a name only when its wishlist no longer lists it
and no other wishlist owns it. Names published otherwise (``image publish``) have no record
and are never removed by a sync, unless a wishlist lists them (its sync adopts them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.images.layout import Layout, hexof, write_json_atomic
from computeops_grid.images.reference import ImageRef

RECORD = "source.json"


@dataclass
class SourceRecord:
    name: str
    source: str
    digest: str
    config_digest: str
    wishlists: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "digest": self.digest,
            "config_digest": self.config_digest,
            "wishlists": sorted(set(self.wishlists)),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SourceRecord:
        return cls(
            str(doc.get("name", "")),
            str(doc.get("source", "")),
            str(doc.get("digest", "")),
            str(doc.get("config_digest", "")),
            [str(w) for w in doc.get("wishlists") or []],
        )


def read_record(layout: Layout, ref: ImageRef) -> SourceRecord | None:
    return _read(layout.metadata(ref) / RECORD)


def _read(path: Path) -> SourceRecord | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return SourceRecord.from_json(doc) if isinstance(doc, dict) else None


def write_record(layout: Layout, ref: ImageRef, record: SourceRecord) -> None:
    write_json_atomic(layout.metadata(ref) / RECORD, record.to_json())


def linked_config(layout: Layout, ref: ImageRef) -> str:
    """The config hex the public symlink of ``ref`` points to ("" if none, or not committed)."""
    link = layout.public(ref)
    try:
        config_hex = os.readlink(link).rstrip("/").rsplit("/", 1)[-1]
    except OSError:
        return ""
    committed = layout.flat_index(config_hex).is_file() and layout.flat(config_hex).is_dir()
    return config_hex if committed else ""


def is_current(layout: Layout, ref: ImageRef, digest: str) -> SourceRecord | None:
    """The record of ``ref`` if it is published, intact, from the registry digest ``digest``."""
    record = read_record(layout, ref)
    if record is None or not digest or record.digest != digest:
        return None
    return record if linked_config(layout, ref) == hexof(record.config_digest) else None


def owned_by(layout: Layout, wishlist: str) -> Iterator[tuple[str, SourceRecord]]:
    """(public path, record) of every name whose record lists ``wishlist``."""
    meta = layout.root / ".metadata"
    for dirpath, dirnames, filenames in os.walk(meta):
        if RECORD not in filenames:
            continue
        dirnames.clear()
        record = _read(Path(dirpath) / RECORD)
        if record is not None and wishlist in record.wishlists:
            yield os.path.relpath(dirpath, meta), record
