"""A job as the store knows it: the expanded description plus its bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.state import JobState


@dataclass
class JobRecord:
    """One row of the ``jobs`` table.

    ``id`` is assigned by cops-grid before any backend call and is embedded in the
    native job (name, directory) so that ``sync`` can find the job again.
    ``spec`` is already expanded: parameters substituted, one element of a bulk.
    """

    id: str
    spec: JobSpec
    backend: str
    state: JobState = JobState.NEW
    native_id: str | None = None
    bulk_id: str | None = None
    index: int = 0
    parent_id: str | None = None
    exit_code: int | None = None
    message: str = ""
    source: str = ""  # the job file it came from
    created: float = 0.0
    updated: float = 0.0
    workdir: Path | None = None
    params: dict[str, str] = field(default_factory=dict)
    # provenance (what ran), set by the store once the wrapper's report is back
    image_digest: str | None = None
    runtime: str | None = None
    node: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name


class StoredRecord(JobRecord):
    """A record read from the store: its description is parsed when first used, so that
    ``status``/``wait`` over 100,000 jobs do not validate 100,000 descriptions they never read."""

    def __init__(self, spec_json: str = "", **fields: Any) -> None:
        self._spec_json = spec_json
        self._spec: JobSpec | None = None
        fields.setdefault("spec", None)  # given as a JobSpec too (dataclasses.replace)
        super().__init__(**fields)

    @property
    def spec(self) -> JobSpec:
        if self._spec is None:
            self._spec = JobSpec.model_validate_json(self._spec_json)
        return self._spec

    @spec.setter
    def spec(self, value: JobSpec | None) -> None:
        if value is not None:
            self._spec = value
