"""Retry with exponential backoff for transient backend errors (never for refusals)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from computeops_grid.errors import BackendError

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_retries(call: Callable[[], T], *, attempts: int = 3, delay: float = 0.5, what: str = "") -> T:
    """Run ``call``; a :class:`BackendError` with ``transient`` set is retried with backoff.

    A non-transient error (the backend refused) is raised at once, and so is one marked
    ``uncertain`` (the request may have arrived: repeating it could run a job twice); the
    last transient error is raised when the attempts are used up.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except BackendError as exc:
            if not exc.transient or getattr(exc, "uncertain", False) or attempt == attempts:
                raise
            log.info("%s failed (%s); retry %d/%d in %.1fs", what, exc.message, attempt, attempts - 1, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover
