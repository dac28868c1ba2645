"""cops-grid: run a containerized application anywhere through one interface.

``from computeops_grid import Client`` is the Python API (:mod:`computeops_grid.api`); it is
imported on first use, so the CLI and the worker-side files do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from computeops_grid.api import Client, JobSpec

__version__ = "0.1.0"
__all__ = ["Client", "JobSpec", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "JobSpec"):
        from computeops_grid import api  # noqa: PLC0415 - lazily: the package itself stays light

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
