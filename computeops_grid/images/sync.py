"""``image sync WISHLIST``: keep a repository in step with a DUCC wishlist, image by image.

1. Resolve (in parallel, nothing downloaded): wildcard entries through the registry's tag
   list, then one ``HEAD`` per image for the digest its tag has now.
2. Plan: an image whose digest equals the one recorded at its last sync (``source.json``,
   :mod:`~computeops_grid.images.provenance`) and whose flat is intact is unchanged; the others
   are published. Names this wishlist published that it no longer lists are removed.
3. Execute, only if there is something to do (inside ``cvmfs_server transaction`` if asked):
   each image is published or fails on its own (a missing tag, a registry that went away,
   an unsafe layer: that image fails, the others go on); then the removals, and a ``gc`` of
   the flats and layers no name uses any more.

Nothing is removed on a guess: a wildcard whose tag list could not be read keeps every name it
may cover, and a wishlist with entries that do not parse removes nothing. ``dry_run`` stops
after the plan and reports it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.images.cvmfs_server import maybe_transaction
from computeops_grid.images.errors import ImageError, RepositoryBusy
from computeops_grid.images.layout import Layout
from computeops_grid.images.locks import flock
from computeops_grid.images.provenance import (
    SourceRecord,
    is_current,
    linked_config,
    owned_by,
    read_record,
    write_record,
)
from computeops_grid.images.publish import Progress, Publisher
from computeops_grid.images.reference import ImageRef, parse_ref
from computeops_grid.images.registry import RegistryClient, RegistryOptions
from computeops_grid.images.remote import Registries, fetch_image, source_url
from computeops_grid.images.repository import gc, remove_names
from computeops_grid.images.sources import SourceImage, load_source
from computeops_grid.images.summary import Outcome, Status, SyncReport
from computeops_grid.images.unpack import Limits, Policy
from computeops_grid.images.wishlist import Wish, load_wishlist, source_for

log = logging.getLogger(__name__)


@dataclass
class SyncOptions:
    dry_run: bool = False
    transport: str = "docker"  # or containers-storage: the wishlist's images from local storage
    storage: str = ""  # containers-storage prefix [driver@root+runroot]
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    policy: Policy = Policy.FAIL
    limits: Limits | None = None
    cvmfs_repo: str | None = None
    progress: Progress | None = None
    on_outcome: Callable[[Outcome], None] | None = None
    workers: int = 8  # parallel tag lists and HEAD requests


@dataclass
class Target:
    wish: Wish
    ref: ImageRef
    digest: str = ""  # what the registry gives for the tag now ("" when unknown)
    error: ImageError | None = None


def sync_wishlist(path: str | Path, root: str | Path, options: SyncOptions | None = None) -> SyncReport:
    """Publish what is new or changed in the wishlist at ``path``, remove what left it."""
    start = time.monotonic()
    options = options or SyncOptions()
    wishlist = load_wishlist(path)
    with Registries(options.registry) as registries:
        run = _Run(Layout(root), str(Path(path).resolve()), options, registries)
        for text, reason in wishlist.skipped:
            hint = "write it as [http[s]://]REGISTRY/REPOSITORY:TAG (a * in the tag is a wildcard)"
            run.emit(Outcome(text, Status.FAILED, text, kind="invalid", message=reason, hint=hint))
        targets, protected = run.resolve(wishlist.wishes)
        todo = run.plan([t for t in targets if t.error is None])
        wanted = {t.ref.public_path for t in targets}
        removals = run.removals(wanted, protected, blocked=len(wishlist.skipped))
        if options.dry_run:
            run.report_plan(todo, removals)
        elif todo or run.adopt or removals:
            with maybe_transaction(options.cvmfs_repo):
                run.execute(todo, removals)
    run.report.outcomes.sort(key=lambda o: (o.name, o.entry))
    run.report.seconds = time.monotonic() - start
    return run.report


class _Run:
    def __init__(self, layout: Layout, owner: str, options: SyncOptions, registries: Registries) -> None:
        self.layout = layout
        self.owner = owner
        self.options = options
        self.report = SyncReport(owner, str(layout.root), options.dry_run)
        self.registries = registries
        self.adopt: list[tuple[ImageRef, SourceRecord]] = []

    def emit(self, outcome: Outcome) -> None:
        self.report.outcomes.append(outcome)
        if outcome.status is Status.FAILED:  # the summary shows it: info, not a second warning
            log.info("%s: %s", outcome.name, outcome.message)
        if self.options.on_outcome is not None:
            self.options.on_outcome(outcome)

    # -- 1. resolve -------------------------------------------------------------------------

    def resolve(self, wishes: list[Wish]) -> tuple[list[Target], list[Wish]]:
        """The images the wishlist names now, with their digests; and the wildcards not listed."""
        protected: list[Wish] = []
        targets: dict[str, Target] = {}
        with ThreadPoolExecutor(self.options.workers, thread_name_prefix="cops-resolve") as pool:
            for wish, found in zip(wishes, pool.map(self._expand, wishes)):
                if isinstance(found, ImageError):
                    self.emit(Outcome.failure(wish.entry, wish.entry, found))
                    protected += [wish] if wish.wildcard else []
                elif not found:
                    self.emit(Outcome(wish.entry, Status.NO_MATCH, wish.entry))
                for ref in [] if isinstance(found, ImageError) else found:
                    targets.setdefault(ref.public_path, Target(wish, ref))
            resolved = list(pool.map(self._head, targets.values()))
        for target in resolved:
            if target.error is not None:
                self.emit(Outcome.failure(target.ref.public_path, target.wish.entry, target.error))
        return resolved, protected

    def _expand(self, wish: Wish) -> list[ImageRef] | ImageError:
        if not wish.wildcard:
            return [wish.ref]
        if self.options.transport != "docker":
            return ImageError(
                "tag wildcards need a registry", hint="list the tags, or sync from the registry"
            )
        try:
            tags = self._client(wish).tags(wish.ref.repository)
        except ImageError as exc:
            return exc
        return [wish.with_tag(tag) for tag in sorted(tags) if wish.matches(tag)]

    def _head(self, target: Target) -> Target:
        if self.options.transport != "docker":
            return target
        ref = target.ref
        try:
            target.digest = ref.digest or self._client(target.wish).head_digest(ref.repository, ref.tag)
        except ImageError as exc:
            target.error = exc
        return target

    def _client(self, wish: Wish) -> RegistryClient:
        return self.registries.client(wish.scheme, wish.ref.registry)

    # -- 2. plan ----------------------------------------------------------------------------

    def plan(self, targets: list[Target]) -> list[Target]:
        """The targets to publish; the unchanged ones are reported (and adopted if need be)."""
        todo = []
        for target in targets:
            record = is_current(self.layout, target.ref, target.digest)
            if record is None:
                todo.append(target)
                continue
            if self.owner not in record.wishlists:
                self.adopt.append((target.ref, record))
            self.emit(
                Outcome(
                    target.ref.public_path,
                    Status.UNCHANGED,
                    target.wish.entry,
                    digest=target.digest,
                    config_digest=record.config_digest,
                )
            )
        return todo

    def removals(
        self, wanted: set[str], protected: list[Wish], *, blocked: int
    ) -> list[tuple[ImageRef, SourceRecord]]:
        """Names this wishlist owns and no longer lists (and no failed wildcard may cover)."""
        if blocked:
            self.report.notes.append(f"nothing removed: {blocked} wishlist entries do not parse")
            return []
        found = []
        for path, record in owned_by(self.layout, self.owner):
            try:
                ref = parse_ref(record.name)
            except ImageError:
                continue
            if path in wanted or any(wish.covers(ref) for wish in protected):
                continue
            found.append((ref, record))
        if protected:
            self.report.notes.append(
                f"nothing removed that {len(protected)} wildcard entries may cover: "
                "their tags could not be listed"
            )
        return found

    def report_plan(self, todo: list[Target], removals: list[tuple[ImageRef, SourceRecord]]) -> None:
        for target in todo:
            status = Status.UPDATED if linked_config(self.layout, target.ref) else Status.PUBLISHED
            self.emit(Outcome(target.ref.public_path, status, target.wish.entry, digest=target.digest))
        for ref, record in removals:
            if record.wishlists == [self.owner]:
                self.emit(Outcome(ref.public_path, Status.REMOVED, digest=record.digest))

    # -- 3. execute -------------------------------------------------------------------------

    def execute(self, todo: list[Target], removals: list[tuple[ImageRef, SourceRecord]]) -> None:
        publisher = Publisher(
            self.layout.root,
            policy=self.options.policy,
            limits=self.options.limits,
            progress=self.options.progress,
        )
        with tempfile.TemporaryDirectory(prefix="cops-sync-") as work:
            for number, target in enumerate(todo):
                self._publish(publisher, target, Path(work) / str(number))
        gone = self._update_records(removals)
        if gone:
            remove_names(self.layout.root, gone)
            for ref in gone:
                self.emit(Outcome(ref.public_path, Status.REMOVED))
        if gone or any(o.status is Status.UPDATED for o in self.report.outcomes):
            self.report.gc_removed = len(gc(self.layout.root).removed)

    def _publish(self, publisher: Publisher, target: Target, workdir: Path) -> None:
        start = time.monotonic()
        previous = linked_config(self.layout, target.ref)
        old = read_record(self.layout, target.ref)
        try:
            image, digest, source = self._fetch(target, workdir)
            owners = [*(old.wishlists if old else []), self.owner]
            record = SourceRecord(str(target.ref), source, digest, image.config_digest, owners)
            result = publisher.publish(image, target.ref, record)
        except RepositoryBusy:
            raise
        except ImageError as exc:
            self.emit(Outcome.failure(target.ref.public_path, target.wish.entry, exc))
            return
        status = Status.PUBLISHED
        if previous:
            status = Status.UNCHANGED if previous == image.config_hex else Status.UPDATED
        self.emit(
            Outcome(
                target.ref.public_path,
                status,
                target.wish.entry,
                digest=digest,
                config_digest=image.config_digest,
                layers_new=result.layers_new,
                layers_reused=result.layers_reused,
                seconds=time.monotonic() - start,
            )
        )

    def _fetch(self, target: Target, workdir: Path) -> tuple[SourceImage, str, str]:
        """(image, digest of the tag, where it came from)."""
        if self.options.transport == "docker":
            image, digest = fetch_image(self._client(target.wish), target.ref)
            return image, digest, source_url(target.wish.scheme, target.ref)
        workdir.mkdir(parents=True)
        spec = source_for(target.ref, self.options.transport, self.options.storage)
        image = load_source(spec, workdir=workdir)[0]
        return image, image.manifest_digest, spec

    def _update_records(self, removals: list[tuple[ImageRef, SourceRecord]]) -> list[ImageRef]:
        """Adopt unchanged names, drop this wishlist from names others still own; the names to remove."""
        gone = []
        with flock(self.layout.commit_lock, exclusive=True):
            for ref, record in self.adopt:
                record.wishlists.append(self.owner)
                write_record(self.layout, ref, record)
            for ref, record in removals:
                others = [w for w in record.wishlists if w != self.owner]
                if others:
                    record.wishlists = others
                    write_record(self.layout, ref, record)
                else:
                    gone.append(ref)
        return gone
