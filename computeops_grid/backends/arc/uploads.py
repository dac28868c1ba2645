"""Inputs of a bulk submission into the jobs' session directories, concurrently.

A-REX takes a client's files only by ``PUT`` into each job's session directory (its cache
is for inputs it downloads itself from URLs: ``[arex/cache]``; a file the client pushes
never goes through it), so the wrapper shared by every job of a submission is sent once per
job. What can be shared is shared: each file is read once per submission, the delegation
is the one of the submission, and the ``PUT``\\ s of different jobs run side by side on a
bounded pool of connections (one ``requests`` session per thread), so a bulk of 100 takes
about the time of 100 / ``workers`` sequential uploads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from computeops_grid.backends.common.retry import with_retries
from computeops_grid.errors import BackendError

log = logging.getLogger(__name__)


class SharedFiles:
    """File contents read once per submission, however many jobs ship them."""

    def __init__(self) -> None:
        self._data: dict[Path, bytes] = {}

    def read(self, path: Path) -> bytes:
        if path not in self._data:
            self._data[path] = path.read_bytes()
        return self._data[path]


def upload_all(
    uploads: Sequence[tuple[str, Callable[[], None]]], *, workers: int, what: str = "upload"
) -> dict[str, str]:
    """Run each job's upload (retried as idempotent) on at most ``workers`` threads; returns
    the jobs whose inputs did not all arrive, with why (the job exists on the CE either way)."""
    failed: dict[str, str] = {}

    def one(item: tuple[str, Callable[[], None]]) -> None:
        job_id, upload = item
        try:
            with_retries(upload, idempotent=True, what=what)
        except BackendError as exc:
            failed[job_id] = exc.message

    if workers <= 1 or len(uploads) <= 1:
        for item in uploads:
            one(item)
        return failed
    with ThreadPoolExecutor(max_workers=min(workers, len(uploads)), thread_name_prefix="arc-upload") as pool:
        list(pool.map(one, uploads))
    return failed
