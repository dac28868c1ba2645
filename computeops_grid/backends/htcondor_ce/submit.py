"""HTCondor-CE submit descriptions from the job model: vanilla jobs for the CE's own schedd,
one cluster per call.

cops-grid has no schedd of its own, so it submits to the CE's schedd directly, spooling the
inputs, as ``condor_submit -remote`` (and ``condor_ce_submit``) does. A grid-universe job
(``grid_resource = condor <ce> <ce>:9619``) would need a local schedd whose gridmanager then
hands the CE the very same vanilla job; sent to the CE's schedd itself, it is never routed
(tests/htcondor/test_ce.py shows both against a real CE). The CE's JobRouter routes the
vanilla job to the site's batch system.

The body is shared by every job of the call; what differs per job travels as queue
items (``cops_id``, ``cops_args``), so a bulk of 100 or a parametric job is one
``queue cops_id,cops_args from (...)`` statement. ``cops_args`` is last on each item
line because HTCondor gives the last variable the rest of the line.

The CE routes on ``xcount`` (cores), ``maxMemory`` (MB) and ``maxWallTime`` (minutes);
``request_*`` are set too for sites that route on them. ``+CopsGridId`` embeds the
cops-grid id in the job ad so that ``lookup`` finds jobs after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from computeops_grid.backends.common.payload import PILOT_FILE, pilot_argv
from computeops_grid.errors import JobFileError
from computeops_grid.jobs.record import JobRecord

CE_PORT = 9619
STDOUT = "std.out"
STDERR = "std.err"
LEAVE_IN_QUEUE = (
    "JobStatus == 4 && (StageOutFinish =?= undefined || StageOutFinish == 0)"
    " && time() - CompletionDate < 864000"
)


def quote_args(args: Sequence[str]) -> str:
    """HTCondor's new argument syntax: ``"a 'b c' 'it''s'"`` (``""`` is a literal ``"``)."""
    parts = []
    for arg in args:
        if "\n" in arg or "\r" in arg:
            raise JobFileError("arguments cannot contain line breaks on HTCondor", field="arguments")
        text = arg.replace('"', '""')
        if not text or any(c in text for c in " \t'"):
            text = "'" + text.replace("'", "''") + "'"
        parts.append(text)
    return '"' + " ".join(parts) + '"'


@dataclass(frozen=True)
class SubmitDescription:
    body: str  # everything but the queue statement (what ``Schedd.submit`` takes)
    items: list[dict[str, str]]  # one per job: cops_id, cops_args

    @property
    def text(self) -> str:
        """The whole submit file, as ``condor_submit`` would read it (``--dry-run``)."""
        lines = "\n".join(f"{i['cops_id']} {i['cops_args']}" for i in self.items)
        return f"{self.body}queue cops_id,cops_args from (\n{lines}\n)\n"


def _check_same(jobs: Sequence[JobRecord]) -> None:
    first = jobs[0].spec
    for job in jobs[1:]:
        if job.spec.resources != first.resources or job.spec.inputs != first.inputs:
            raise ValueError("jobs of one cluster must share resources and inputs")


def describe(
    jobs: Sequence[JobRecord],
    *,
    jobs_dir: Path,
    pilot: Path,
    python: str = "python3",
    image_root: str | None = None,
    inputs: Sequence[Path] = (),
    extra: dict[str, str] | None = None,
) -> SubmitDescription:
    """One cluster's submit description; ``jobs`` must share resources and inputs."""
    _check_same(jobs)
    res = jobs[0].spec.resources
    memory_mb = max(1, res.memory // 2**20)
    settings: dict[str, str] = {
        "universe": "vanilla",
        "executable": str(pilot),
        "transfer_executable": "true",
        "arguments": "$(cops_args)",
        "initialdir": f"{jobs_dir}/$(cops_id)",
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "output": STDOUT,
        "error": STDERR,
        "log": f"{jobs_dir}/htcondor-ce.log",
        "request_cpus": str(res.cores),
        "request_memory": str(memory_mb),
        "+xcount": str(res.cores),
        "+maxMemory": str(memory_mb),
        "+maxWallTime": str(max(1, -(-res.walltime // 60))),
        "+CopsGridId": '"$(cops_id)"',
        # a finished job waits in the CE's queue until its outputs are retrieved (10 days at
        # most), then goes to the schedd's history, where ``status`` still finds it
        "leave_in_queue": LEAVE_IN_QUEUE,
    }
    if res.gpus:
        settings["request_gpus"] = str(res.gpus)
    if inputs:
        settings["transfer_input_files"] = ",".join(str(p) for p in inputs)
    settings.update(extra or {})
    body = "".join(f"{key:<24}= {value}\n" for key, value in settings.items())
    items = [
        {
            "cops_id": job.id,
            "cops_args": quote_args(
                pilot_argv(job.spec, pilot=PILOT_FILE, python=python, image_root=image_root)[2:]
            ),
        }
        for job in jobs
    ]
    return SubmitDescription(body=body, items=items)
