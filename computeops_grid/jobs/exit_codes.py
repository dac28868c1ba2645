"""Exit codes 240-249, reserved for cops-grid itself, read from their one table.

A job's exit code is its payload's own, except 240-249: the pilot wrapper's failures and
those of the job scripts backends write around it (a Slurm job that cannot enter its
directory exits before the wrapper starts). Their numbers, reason keywords and meanings are
written once, as ``EXIT_CODES`` in the wrapper ``worker/cops_pilot.py`` (the file that cannot
import anything); the client loads that file here instead of keeping a copy.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from computeops_grid import worker


@functools.cache
def table() -> Mapping[int, tuple[str, str]]:
    """code -> (reason keyword, what it means): the wrapper's immutable ``EXIT_CODES``."""
    codes: Mapping[int, tuple[str, str]] = worker.load_pilot().EXIT_CODES
    return codes


@functools.cache
def reserved() -> range:
    """Every code kept from payloads (240-249), assigned in :func:`table` or not."""
    codes: range = worker.load_pilot().EXIT_RESERVED
    return codes


def code(reason: str) -> int:
    """The number of a reason keyword (``"job-dir-unusable"``); KeyError if no row has it."""
    for number, (keyword, _meaning) in table().items():
        if keyword == reason:
            return number
    raise KeyError(f"no reserved exit code has the reason {reason!r}")
