"""A third-party backend, installed only for the tests: proves entry-point registration.

It "runs" a job by writing its description into a spool directory, and lets the tests
set the failure modes that real CEs show: refusing connections (``down``), refusing the
job (``refuse``) and dropping the connection after accepting a job (``drop_after_accept``).
``cancel_answer`` picks what a cancel of an active job does: ``stop`` it, take the request and
confirm it ``later`` (never, here), ``refuse`` it, or lose the reply (``dropped``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.errors import BackendRejected, BackendUnavailable, DeliveryUncertain
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState


class SpoolSettings(BackendSettings):
    spool: Path
    down: bool = False
    refuse: bool = False
    drop_after_accept: bool = False
    cancel_answer: Literal["stop", "later", "refuse", "dropped"] = "stop"


class SpoolBackend:
    name: ClassVar[str] = "spool"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.BULK_SUBMIT, Capability.CANCEL})
    Settings: ClassVar[type[BackendSettings]] = SpoolSettings

    def __init__(self, settings: SpoolSettings, context: BackendContext) -> None:
        self.settings = settings
        self.ctx = context

    def _path(self, job: JobRecord) -> Path:
        return self.settings.spool / f"{job.id}.json"

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        if self.settings.down:
            err = BackendUnavailable("connection refused", backend=self.name)
            return [SubmitResult(j.id, error=err) for j in jobs]
        if self.settings.refuse:
            err = BackendRejected("job description rejected: Queue 'nosuch' unknown", backend=self.name)
            return [SubmitResult(j.id, error=err) for j in jobs]
        self.settings.spool.mkdir(parents=True, exist_ok=True)
        for job in jobs:
            self._path(job).write_text(json.dumps({"id": job.id, "state": "queued"}))
        if self.settings.drop_after_accept:
            raise DeliveryUncertain("connection reset by peer after sending", backend=self.name)
        return [SubmitResult(j.id, native_id=f"spool-{j.id}") for j in jobs]

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        return {j.id: SubmitResult(j.id, f"spool-{j.id}") if self._path(j).exists() else None for j in jobs}

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        out = {}
        for job in jobs:
            if self._path(job).exists():
                state = json.loads(self._path(job).read_text())["state"]
                out[job.id] = StatusInfo(JobState(state), native_state=state)
        return out

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """A job that ended keeps its state and is answered as it ended; an active one is
        handled as ``cancel_answer`` says; ``down`` refuses the connection."""
        if self.settings.down:
            raise BackendUnavailable("connection refused", backend=self.name)
        if self.settings.cancel_answer == "dropped":
            raise DeliveryUncertain("connection reset by peer after sending the cancel", backend=self.name)
        answers = {}
        for job in jobs:
            info = self.status([job]).get(job.id)
            if info is None:
                answers[job.id] = StatusInfo(job.state, message="no such job in the spool")
            elif info.state.final:
                answers[job.id] = info
            elif self.settings.cancel_answer == "refuse":
                answers[job.id] = StatusInfo(info.state, message="Queue 'keep' forbids kills")
            elif self.settings.cancel_answer == "stop":
                self._path(job).write_text(json.dumps({"id": job.id, "state": "cancelled"}))
                answers[job.id] = StatusInfo(JobState.CANCELLED, native_state="cancelled")
        return answers  # "later": accepted, never confirmed

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        return "".join(f"spool {j.id} {j.name}\n" for j in jobs)

    def check(self) -> Health:
        return Health(not self.settings.down, "spool directory" if not self.settings.down else "down")
