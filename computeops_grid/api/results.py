"""What a submit or a cancel did, job by job, and the typed error it amounts to (if any).

The CLI prints these and exits with the error's code; the Python API raises the error unless
the caller asked to look at the outcome first (``check=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from computeops_grid.api.records import CancelInfo, JobInfo
from computeops_grid.errors import (
    BackendRejected,
    BackendUnavailable,
    CancelUnconfirmed,
    CopsError,
    DeliveryUncertain,
    ToolMissing,
)
from computeops_grid.logic.follow import UNCONFIRMED


@dataclass(frozen=True)
class Submission:
    """Every job of a submit (or resubmit), in order, with what became of it.

    ``submitted``: accepted by their backend. ``failed``: refused for good (why).
    ``retryable``: not sent, kept as ``new`` (why): ``resubmit`` or ``sync`` sends them.
    ``unknown``: the request may have arrived, the reply was lost: ``sync`` finds them.
    ``notes``: what native job files hold that the jobs do not carry.
    """

    jobs: list[JobInfo]
    submitted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    retryable: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    tool_missing: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [job["id"] for job in self.jobs]

    def error(self) -> CopsError | None:
        """The typed error this outcome amounts to, None when every job was accepted (or some
        were refused for good while others were accepted: see ``failed``)."""
        if self.unknown:
            return DeliveryUncertain(
                f"{len(self.unknown)} job(s) may have reached the backend, but no reply came back",
                hint="nothing is sent again blindly: `cops-grid sync` finds them on the backend "
                "(or submits those it does not find)",
            )
        if self.retryable:
            unsent = ToolMissing if self.tool_missing else BackendUnavailable
            return unsent(
                f"{len(self.retryable)} job(s) were not sent: {next(iter(self.retryable.values()))}",
                hint="they are kept in the store: `cops-grid resubmit ID...` or `cops-grid sync`",
            )
        if self.failed and not self.submitted:
            return BackendRejected(
                f"no job was accepted: {next(iter(self.failed.values()))}",
                hint="fix the job or the backend settings, then `cops-grid resubmit ID...`",
            )
        return None


@dataclass(frozen=True)
class Cancellation:
    """Every job of a cancel with its ``outcome``; ``reasons`` says why for ``refused``
    (the backend's answer) and ``error`` (the backend was not reached: state unchanged)."""

    jobs: list[CancelInfo]
    reasons: dict[str, str] = field(default_factory=dict)
    errors: list[CopsError] = field(default_factory=list)

    def of(self, outcome: str) -> list[str]:
        return [job["id"] for job in self.jobs if job["outcome"] == outcome]

    def error(self) -> CopsError | None:
        """The backend's own error first, then refusals, then cancels not yet confirmed."""
        if self.errors:
            return self.errors[0]
        refused = self.of("refused")
        if refused:
            return BackendRejected(
                f"{len(refused)} job(s) not cancelled ({refused[0]}: {self.reasons[refused[0]]})",
                hint="`cops-grid status ID...` shows what the backend says about them",
            )
        unconfirmed = self.of("unconfirmed")
        if unconfirmed:
            return CancelUnconfirmed(
                f"{len(unconfirmed)} job(s): {UNCONFIRMED}",
                hint="`cops-grid status ID...` shows when they end; cancelling again is safe",
            )
        return None


@dataclass(frozen=True)
class Repair:
    """What ``sync`` did: jobs stuck ``submitting`` found on their backend (``found``) or
    not (``reset`` to ``new``, then submitted with the others in ``submit``), or not
    looked up because their backend did not answer (``still_unknown``)."""

    found: list[str]
    reset: list[str]
    still_unknown: list[str]
    submit: Submission

    def counts(self) -> dict[str, int]:
        return {
            "found": len(self.found), "reset": len(self.reset), "still_unknown": len(self.still_unknown),
            "submitted": len(self.submit.submitted), "failed": len(self.submit.failed),
            "retryable": len(self.submit.retryable),
        }  # fmt: skip
