"""The Python API of cops-grid: ``from computeops_grid import Client``.

See :class:`~computeops_grid.api.client.Client`; the records it returns are those
``cops-grid ... --json`` prints (:mod:`computeops_grid.api.records`).
"""

from computeops_grid.api.client import Client, Prepared
from computeops_grid.api.records import CancelInfo, JobInfo, failed, final
from computeops_grid.api.results import Cancellation, Repair, Submission
from computeops_grid.jobs.model import JobSpec

__all__ = [
    "CancelInfo",
    "Cancellation",
    "Client",
    "JobInfo",
    "JobSpec",
    "Prepared",
    "Repair",
    "Submission",
    "failed",
    "final",
]
