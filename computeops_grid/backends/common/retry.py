"""The one retry policy, driven by the delivery model (:class:`~computeops_grid.errors.Delivery`).

* *not sent*: retried with backoff (unless the error says retrying soon cannot help);
* *may have arrived*: retried only for idempotent requests (status, lookup, cancel, a
  download); never for a submit, which ``sync`` resolves with ``lookup`` instead;
* *rejected*: raised at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from computeops_grid.backends.base import SubmitResult
from computeops_grid.errors import BackendError, BackendUnavailable, Delivery

if TYPE_CHECKING:
    from computeops_grid.jobs.record import JobRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


def may_retry(exc: BackendError, *, idempotent: bool) -> bool:
    if exc.delivery is Delivery.NOT_SENT:
        return exc.retry_soon
    return idempotent and exc.delivery is Delivery.MAY_HAVE_ARRIVED


def with_retries(
    call: Callable[[], T], *, idempotent: bool, attempts: int = 3, delay: float = 0.5, what: str = ""
) -> T:
    """Run ``call``, retrying what :func:`may_retry` allows; the last error is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except BackendError as exc:
            if attempt == attempts or not may_retry(exc, idempotent=idempotent):
                raise
            log.info("%s failed (%s); retry %d/%d in %.1fs", what, exc.message, attempt, attempts - 1, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def one_by_one(
    jobs: Sequence[JobRecord], submit_one: Callable[[JobRecord], SubmitResult]
) -> list[SubmitResult]:
    """Submit jobs one call each. A refusal is that job's answer; an error that says the
    backend is unreachable or may have the job stops the loop: that job gets it, and the
    jobs after it were certainly not sent (answers for the jobs before it are kept)."""
    results: list[SubmitResult] = []
    for i, job in enumerate(jobs):
        try:
            results.append(submit_one(job))
        except BackendError as exc:
            results.append(SubmitResult(job.id, error=exc))
            if exc.delivery is Delivery.REJECTED:
                continue
            stop = BackendUnavailable(f"not sent: {exc.message}", hint=exc.hint)
            results += [SubmitResult(j.id, error=stop) for j in jobs[i + 1 :]]
            break
    return results
