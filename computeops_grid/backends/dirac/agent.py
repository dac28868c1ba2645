"""The pilot side of DiracX jobs: what a VO runs on a VM or an HPC login node.

A bare DiracX (0.7.0) has no matcher and no route that hands a waiting job to a pilot,
so this helper does the pilot's and DIRAC job wrapper's work through the public API:

1. pick waiting jobs by search (or take the ids it is given);
2. read the stored JDL (only ``reschedule`` shows it; ``reset_jobs`` keeps the counter);
3. move the job ``Checking → Waiting → Matched → Running`` (DIRAC's state machine);
4. download the ``SB:`` input sandboxes, extracting them safely;
5. run ``Executable Arguments`` as an argv list (the cops-grid pilot wrapper for
   cops-grid jobs) in the job directory, stdout/stderr to ``StdOutput``/``StdError``,
   with heartbeats; a ``Kill`` command in a heartbeat's answer (the owner killed the
   job) stops the payload's process group and ends here;
6. pack ``OutputSandbox`` (globs inside the job directory, no links), upload it with the
   job owner's token (a pilot token may not create sandboxes) and assign it to the job;
7. report ``Completing → Done`` or ``Failed`` with ``ApplicationStatus = "exit code N"``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

from computeops_grid.backends.common.payload import REPORT_NAME
from computeops_grid.backends.common.sandbox import build_archive
from computeops_grid.backends.dirac.diracx_client import DiracXClient
from computeops_grid.errors import BackendError

log = logging.getLogger(__name__)
WAITING = ("Received", "Waiting")
TO_RUNNING = ("Checking", "Waiting", "Matched", "Running")
HEARTBEAT_S = 60.0
KILL_GRACE_S = 5.0  # between SIGTERM and SIGKILL when the job's owner killed it


@dataclass
class JobDescription:
    executable: str
    arguments: list[str]
    input_sandbox: list[str] = field(default_factory=list)
    output_sandbox: list[str] = field(default_factory=list)
    stdout: str = "std.out"
    stderr: str = "std.err"
    name: str = ""


@dataclass
class PilotResult:
    job_id: int
    status: str
    exit_code: int | None
    output_sandbox: str | None = None
    message: str = ""


def parse_jdl(text: str) -> JobDescription:
    """The parts of a stored JDL the helper needs, read with DIRAC's own parser."""
    text = text.strip()
    ad = ClassAd(text if text.startswith("[") else f"[{text}]")
    if not ad.isOK() or not ad.lookupAttribute("Executable"):
        raise BackendError("the job's JDL does not parse or has no Executable", backend="diracx")

    def listed(name: str) -> list[str]:
        return [str(v) for v in ad.getListFromExpression(name)] if ad.lookupAttribute(name) else []

    return JobDescription(
        executable=ad.getAttributeString("Executable"),
        arguments=shlex.split(ad.getAttributeString("Arguments")),
        input_sandbox=listed("InputSandbox"),
        output_sandbox=listed("OutputSandbox"),
        stdout=ad.getAttributeString("StdOutput") or "std.out",
        stderr=ad.getAttributeString("StdError") or "std.err",
        name=ad.getAttributeString("JobName"),
    )


def waiting_jobs(client: DiracXClient, *, limit: int, name_contains: str = "") -> list[int]:
    """The oldest waiting jobs visible to the token, at most ``limit``."""
    cond: list[dict[str, object]] = [{"parameter": "Status", "operator": "in", "values": list(WAITING)}]
    if name_contains:
        cond.append({"parameter": "JobName", "operator": "like", "value": f"%{name_contains}%"})
    rows = client.search(cond, ["JobID"], per_page=max(1, min(limit, 500)))
    return [int(r["JobID"]) for r in rows][:limit]


def current_status(client: DiracXClient, job_id: int) -> str:
    rows = client.search([{"parameter": "JobID", "operator": "eq", "value": job_id}], ["JobID", "Status"])
    return str(rows[0]["Status"]) if rows else ""


def _command(desc: JobDescription, workdir: Path, python: str) -> list[str]:
    exe = desc.executable
    if "/" not in exe and (workdir / exe).is_file():
        if exe.endswith(".py"):
            return [python, exe, *desc.arguments]
        exe = f"./{exe}"
    return [exe, *desc.arguments]


def _run(
    client: DiracXClient, job_id: int, desc: JobDescription, workdir: Path, *, python: str, heartbeat: float
) -> int | None:
    """The payload's return code; None when its owner killed the job (a heartbeat got ``Kill``)."""
    argv = _command(desc, workdir, python)
    log.info("job %d: running %s", job_id, shlex.join(argv))
    start = time.monotonic()
    with (workdir / desc.stdout).open("wb") as out, (workdir / desc.stderr).open("wb") as err:
        try:
            proc = subprocess.Popen(
                argv, cwd=workdir, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:
            err.write(f"cannot start {argv[0]}: {exc}\n".encode())
            return 127
        while True:
            try:
                return proc.wait(timeout=heartbeat)
            except subprocess.TimeoutExpired:
                if "Kill" in _beat(client, job_id, time.monotonic() - start):
                    log.info("job %d: killed by its owner: stopping the payload", job_id)
                    _stop(proc)
                    return None


def _beat(client: DiracXClient, job_id: int, wall_seconds: float) -> list[str]:
    try:
        return client.heartbeat(job_id, wall_seconds)
    except BackendError as exc:  # a missed heartbeat must not kill the payload
        log.warning("job %d: heartbeat failed: %s", job_id, exc.message)
        return []


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the payload's process group, SIGKILL to what is left after ``KILL_GRACE_S``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _exit_code(workdir: Path, returncode: int) -> int:
    """The wrapper's report is the authority on the payload's exit code when present."""
    try:
        report = json.loads((workdir / REPORT_NAME).read_text())
        return int(report["exit_code"])
    except (OSError, ValueError, KeyError, TypeError):
        return returncode


def _outputs(workdir: Path, patterns: list[str]) -> list[tuple[str, Path]]:
    root = workdir.resolve()
    found: dict[str, Path] = {}
    for pattern in patterns:
        if pattern.startswith(("LFN:", "/")) or ".." in Path(pattern).parts:
            log.warning("output %s is not a sandbox file; skipped", pattern)
            continue
        for match in sorted(root.glob(pattern)):
            if match.is_symlink() or not match.is_file() or not match.resolve().is_relative_to(root):
                log.warning("output %s is a link or outside the job directory; skipped", match)
                continue
            found[str(match.relative_to(root))] = match
    return sorted(found.items())


def run_job(
    client: DiracXClient,
    job_id: int,
    root: Path,
    *,
    python: str = sys.executable,
    heartbeat: float = HEARTBEAT_S,
) -> PilotResult:
    """Run one waiting job to the end and report it (see the module docstring).

    Every ``heartbeat`` seconds the job is reported alive; when the server answers ``Kill``
    (its owner killed it) the payload is stopped and nothing more is reported."""
    desc = parse_jdl(client.stored_jdl(job_id))
    client.set_status({job_id: [{"Status": s, "MinorStatus": "cops-grid pilot"} for s in TO_RUNNING]})
    status = current_status(client, job_id)
    if status != "Running":
        return PilotResult(job_id, status, None, message=f"job is {status}, not runnable")
    workdir = root / str(job_id)
    workdir.mkdir(parents=True, exist_ok=True)
    for entry in desc.input_sandbox:
        if entry.startswith("SB:"):
            client.download(entry, workdir)
        else:
            log.warning("job %d: input %s is not a DiracX sandbox; not fetched", job_id, entry)
    returncode = _run(client, job_id, desc, workdir, python=python, heartbeat=heartbeat)
    if returncode is None:
        return PilotResult(job_id, current_status(client, job_id), None, message="killed: payload stopped")
    code = _exit_code(workdir, returncode)
    files = _outputs(workdir, [desc.stdout, desc.stderr, *desc.output_sandbox])
    pfn = None
    if files:
        pfn = client.upload(build_archive(files))
        client.assign_output(job_id, pfn)
    final = "Done" if code == 0 else "Failed"
    minor = "Execution Complete" if code == 0 else "Application Finished With Errors"
    client.set_status(
        {
            job_id: [
                {"Status": "Completing", "MinorStatus": "Uploading Output Sandbox"},
                {"Status": final, "MinorStatus": minor, "ApplicationStatus": f"exit code {code}"},
            ]
        }
    )
    return PilotResult(job_id, current_status(client, job_id), code, pfn, minor)
