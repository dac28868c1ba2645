"""The per-image summary of a wishlist sync: what happened to each image, and why one failed."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from computeops_grid.images.errors import ImageError


class Status(str, enum.Enum):
    """What a sync did to one image (a dry run: what it would do)."""

    PUBLISHED = "published"  # a new name
    UPDATED = "updated"  # the tag moved: the name now points to another image
    UNCHANGED = "unchanged"
    REMOVED = "removed"  # the wishlist no longer lists it
    NO_MATCH = "no-match"  # a wildcard that no tag matches
    FAILED = "failed"


_WOULD = {
    Status.PUBLISHED: "would publish",
    Status.UPDATED: "would update",
    Status.REMOVED: "would remove",
}


@dataclass
class Outcome:
    name: str  # the public path (registry/repo:tag), or the entry when it named no image
    status: Status
    entry: str = ""  # the wishlist entry that named it
    digest: str = ""  # the registry's digest of the tag
    config_digest: str = ""
    kind: str = ""  # for a failure: unreachable, tls, auth, not-found, rate-limited, invalid, ...
    message: str = ""
    hint: str = ""
    layers_new: int = 0
    layers_reused: int = 0
    seconds: float = 0.0

    @classmethod
    def failure(cls, name: str, entry: str, exc: ImageError) -> Outcome:
        kind = str(getattr(exc, "kind", "image"))
        return cls(name, Status.FAILED, entry, kind=kind, message=exc.message, hint=exc.hint or "")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "status": self.status.value, "entry": self.entry}
        if self.status is Status.FAILED:
            data["error"] = {"kind": self.kind, "message": self.message, "hint": self.hint}
            return data
        data.update(digest=self.digest, config_digest=self.config_digest)
        if self.status in (Status.PUBLISHED, Status.UPDATED):
            data.update(layers_new=self.layers_new, layers_reused=self.layers_reused)
            data["seconds"] = round(self.seconds, 3)
        return data


@dataclass
class SyncReport:
    wishlist: str
    repository: str
    dry_run: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gc_removed: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.FAILED]

    def counts(self) -> dict[str, int]:
        found = Counter(o.status.value for o in self.outcomes)
        return {status.value: found.get(status.value, 0) for status in Status}

    def to_json(self) -> dict[str, Any]:
        return {
            "wishlist": self.wishlist,
            "repository": self.repository,
            "dry_run": self.dry_run,
            "ok": not self.failed,
            "counts": self.counts(),
            "images": [o.to_json() for o in self.outcomes],
            "notes": self.notes,
            "gc_removed": self.gc_removed,
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        """The summary as text: one line per image that did something, then the totals."""
        lines = []
        for o in self.outcomes:
            if o.status is Status.UNCHANGED:
                continue
            if o.status is Status.FAILED:
                lines.append(f"FAILED     {o.name}: {o.message}")
                lines += [f"           hint: {o.hint}"] if o.hint else []
            elif o.status is Status.NO_MATCH:
                lines.append(f"no match   {o.entry}: no tag matches")
            else:
                extra = f"  ({o.layers_new} new / {o.layers_reused} reused layers)" if o.layers_new else ""
                verb = _WOULD[o.status] if self.dry_run else o.status.value
                lines.append(
                    f"{verb:15s}  {o.name}{extra}" if self.dry_run else f"{verb:9s}  {o.name}{extra}"
                )
        lines += [f"note: {note}" for note in self.notes]
        counts = ", ".join(f"{n} {status}" for status, n in self.counts().items() if n)
        dry = " (dry run: nothing changed)" if self.dry_run else ""
        lines.append(f"{counts or 'nothing to do'}{dry}; {self.seconds:.2f}s")
        return lines
