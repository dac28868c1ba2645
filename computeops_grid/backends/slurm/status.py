"""Slurm job states: the native->common map and parsers of ``squeue``/``sacct``/``scontrol``.

Without accounting, a finished job stays in ``squeue --states=all`` for ``MinJobAge``
seconds only; after that the exit code file the job script leaves in the job directory
(and the wrapper's report) is the record of how it ended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from computeops_grid.backends.base import StatusInfo
from computeops_grid.backends.common.payload import REPORT_NAME
from computeops_grid.backends.slurm.script import EXIT_FILE
from computeops_grid.jobs import exit_codes
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)

STATE_MAP: dict[str, JobState] = {
    "PENDING": JobState.QUEUED,
    "CONFIGURING": JobState.QUEUED,
    "REQUEUED": JobState.QUEUED,
    "REQUEUE_HOLD": JobState.QUEUED,
    "REQUEUE_FED": JobState.QUEUED,
    "RESV_DEL_HOLD": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
}

SQUEUE_FORMAT = "%i|%T|%r|%j"
_EXIT_RE = re.compile(r"^(\d+):(\d+)$")


@dataclass(frozen=True)
class NativeJob:
    """One line of ``squeue -r``: an element of an array is ``<arrayid>_<index>``."""

    native_id: str
    state: str
    reason: str
    name: str

    @property
    def array_index(self) -> int | None:
        _, sep, index = self.native_id.partition("_")
        return int(index) if sep and index.isdigit() else None


def parse_squeue(text: str) -> list[NativeJob]:
    """Parse ``squeue --noheader --array --format=%i|%T|%r|%j`` output."""
    jobs = []
    for line in text.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4 and parts[0]:
            jobs.append(NativeJob(*parts))
    return jobs


def parse_sacct(text: str) -> dict[str, tuple[str, int | None]]:
    """Parse ``sacct -n -P -X -o JobID,State,ExitCode``: native id -> (state, exit code)."""
    result: dict[str, tuple[str, int | None]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3:
            continue
        match = _EXIT_RE.match(parts[2])
        result[parts[0]] = (parts[1].split()[0] if parts[1] else "", int(match.group(1)) if match else None)
    return result


def exit_code_from_files(workdir: Path | None) -> int | None:
    """The payload's exit code: the wrapper's report first, then the job script's exit file."""
    if workdir is None:
        return None
    texts: dict[str, str] = {}
    for name in EXIT_CODE_FILES:
        with contextlib.suppress(OSError):
            texts[name] = (workdir / name).read_text()
    return exit_code_from_texts(texts)


EXIT_CODE_FILES = (REPORT_NAME, EXIT_FILE)  # what :func:`exit_code_from_texts` reads


def exit_code_from_texts(texts: dict[str, str]) -> int | None:
    """:func:`exit_code_from_files` from the files' contents (read elsewhere: a login node)."""
    try:
        report = json.loads(texts.get(REPORT_NAME, ""))
        if isinstance(report, dict) and isinstance(report.get("exit_code"), int):
            return int(report["exit_code"])
    except ValueError:
        pass
    try:
        return int(texts.get(EXIT_FILE, "").strip())
    except ValueError:
        return None


def to_status(native_state: str, reason: str, exit_code: int | None) -> StatusInfo | None:
    """Map a native state; ``None`` (no change, logged) when the state is unknown."""
    state = STATE_MAP.get(native_state.upper().rstrip("+"))
    if state is None:
        log.warning("unknown Slurm state %r: leaving the job's state unchanged", native_state)
        return None
    if state is JobState.COMPLETED and exit_code not in (None, 0):
        state = JobState.FAILED
    message = "" if reason in ("", "None") else reason
    if state is JobState.FAILED and exit_code is not None:
        message = f"exit code {exit_code}" + (f" ({message})" if message else "")
        if exit_code in exit_codes.table():  # the wrapper's own failure: say which (`logs` has the detail)
            reason, meaning = exit_codes.table()[exit_code]
            message += f": {reason}, {meaning}; `cops-grid logs` has the wrapper's message"
    return StatusInfo(state=state, exit_code=exit_code, message=message, native_state=native_state)


def from_files(workdir: Path | None) -> StatusInfo | None:
    """Resolve a job that Slurm no longer lists from the files it left behind."""
    return from_exit_code(exit_code_from_files(workdir))


def from_exit_code(code: int | None) -> StatusInfo | None:
    """The final state of a job Slurm no longer lists, from the exit code its files hold."""
    if code is None:
        return None
    return to_status("COMPLETED" if code == 0 else "FAILED", "", code)
