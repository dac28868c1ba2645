"""The backend protocol: what every place a job can run must provide.

A backend is one module with one class, registered under the entry-point group
``computeops_grid.backends`` (built-ins exactly like third-party plugins). Every
operation is bulk: it takes a sequence of jobs and answers for each of them.

Contract (checked by ``tests/contract``):

* ``submit(jobs)`` returns one :class:`SubmitResult` per job, in order. A result with
  ``native_id`` set means the backend accepted the job; one with ``error`` set carries
  the error's :class:`~computeops_grid.errors.Delivery`: *rejected* (the job fails), *not
  sent* (it stays retryable) or *may have arrived* (it stays ``submitting`` and ``sync``
  asks :meth:`lookup`). A :class:`BackendError` raised by ``submit`` is the answer for
  every job of the call.
* ``lookup(jobs)`` finds jobs on the backend by their cops-grid id (embedded in the
  native job name / directory at submission) and never submits anything.
* ``status(jobs)`` answers for every job it knows; unknown native states map to no change.
* ``cancel(jobs)`` (optional, :class:`SupportsCancel`) reports ``CANCELLED`` only for jobs
  it stopped and a finished job's real end; the logic layer records nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from computeops_grid.errors import BackendError
from computeops_grid.jobs.state import JobState

if TYPE_CHECKING:
    from computeops_grid.jobs.record import JobRecord


class Capability(str, enum.Enum):
    """What a backend can do, declared as data (shown by ``cops-grid backends``)."""

    BULK_SUBMIT = "bulk-submit"  # many jobs in one native call
    ARRAYS = "arrays"  # parametric jobs as one native array
    CANCEL = "cancel"
    OUTPUTS = "outputs"  # declared output files can be fetched
    LOGS = "logs"
    GPU = "gpu"
    CONTAINERS = "containers"  # payload runs through the pilot wrapper in an image
    DETACHED = "detached"  # jobs survive the client exiting


class BackendSettings(BaseModel):
    """Base of every backend's settings model (``backends.<name>:`` in the config)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class BackendContext:
    """Paths every backend may need, resolved once from the configuration."""

    home: Path  # cops-grid data dir (store, job dirs)
    jobs_dir: Path  # per-job work directories live under here
    image_root: Path  # unpacked.cern.ch-style image repository
    pilot: Path  # the pilot wrapper file (shipped with jobs)


@dataclass
class SubmitResult:
    job_id: str
    native_id: str | None = None
    state: JobState = JobState.QUEUED
    error: BackendError | None = None


@dataclass
class StatusInfo:
    state: JobState
    exit_code: int | None = None
    message: str = ""
    native_state: str = ""


@dataclass
class Health:
    """Answer of :meth:`Backend.check` for ``cops-grid backends``."""

    reachable: bool
    detail: str = ""
    warnings: list[str] = field(default_factory=list)
    credential: str = ""  # "ok", or what is wrong with it; "" where the backend needs none


@runtime_checkable
class Backend(Protocol):
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    Settings: ClassVar[type[BackendSettings]]

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]: ...

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]: ...

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]: ...

    def describe(self, jobs: Sequence[JobRecord]) -> str: ...

    def check(self) -> Health: ...


# -- optional abilities: a backend implements one exactly when it declares the capability ----
# (checked when the registry loads a backend; the logic layer tests ``isinstance``, never getattr)


@runtime_checkable
class SupportsCancel(Protocol):
    """Stop jobs on the backend and say what is known right after, per job id:

    * a **final** state: ``CANCELLED`` for a job this call stopped; ``COMPLETED`` or
      ``FAILED`` (with its exit code) for a job that had already ended, which is left alone
      (a backend that deletes jobs on cancel must look before it deletes);
    * a **non-final** state: the backend refused or could not stop the job; ``message`` says why;
    * **absent**: the request was accepted but is not confirmed yet; the caller asks ``status``.

    A :class:`BackendError` raised is the answer for every job of the call (its delivery
    says whether the request may have arrived).
    """

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]: ...


@runtime_checkable
class SupportsOutputs(Protocol):
    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]: ...


@runtime_checkable
class SupportsLogs(Protocol):
    def logs(self, job: JobRecord) -> str: ...


@runtime_checkable
class SupportsPreflight(Protocol):
    """Refuse before anything is stored or sent (credentials, settings); no capability."""

    def preflight(self, jobs: Sequence[JobRecord]) -> None: ...


@runtime_checkable
class SupportsReports(Protocol):
    """What ran, for backends whose jobs run without the pilot wrapper (Swarm, Kubernetes): per
    ended job id, a report shaped like the wrapper's (image, image_digest, runtime, node...) from
    what the engine knows; ids it knows nothing about are left out. No capability: backends that
    return files bring the wrapper's own report back (logic/provenance.py)."""

    def reports(self, jobs: Sequence[JobRecord]) -> dict[str, dict[str, Any]]: ...


ABILITIES: dict[Capability, type] = {
    Capability.CANCEL: SupportsCancel,
    Capability.OUTPUTS: SupportsOutputs,
    Capability.LOGS: SupportsLogs,
}


def undeclared_abilities(backend: object, capabilities: frozenset[Capability]) -> list[str]:
    """Mismatches between what a backend declares and what it implements (empty when none)."""
    problems = []
    for capability, protocol in ABILITIES.items():
        has = isinstance(backend, protocol)
        if has != (capability in capabilities):
            verb = "implements" if has else "lacks"
            problems.append(
                f"{verb} {protocol.__name__} but {'does not declare' if has else 'declares'} "
                f"{capability.value!r}"
            )
    return problems
