"""ARC job descriptions from the job model: ADL (EMI-ES XML, the REST default) and xRSL.

Executable = the pilot wrapper (shipped as an input file); its arguments run the payload
in the job's image. Inputs are uploaded into the session directory, outputs are declared
(A-REX keeps only declared files), plus stdout, stderr and the wrapper's report.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from computeops_grid import worker
from computeops_grid.backends.arc import storage_stager
from computeops_grid.backends.common.payload import PILOT_FILE, REPORT_NAME, pilot_argv
from computeops_grid.jobs.record import JobRecord

ADL_NS = "http://www.eu-emi.eu/es/2010/12/adl"
NG_NS = "http://www.nordugrid.org/es/2011/12/nordugrid-adl"
STDOUT = "stdout"
STDERR = "stderr"
NAME_PREFIX = "cops-"
_EXEC = "<IsExecutable>true</IsExecutable>"
# A-REX's LRMS job script puts each argument in "..." escaping only \ and ": `$` and
# backquotes would be expanded by the batch shell on the worker, outside the container.
_EXPANDED = re.compile(r"[$`]")
LAUNCHER_FILE = worker.DIRAC_LAUNCHER  # decodes `b64:<JSON argv>` and execs the wrapper


@dataclass(frozen=True)
class DescOptions:
    queue: str | None = None
    runtime_environments: tuple[str, ...] = ()
    gpu_runtime_environment: str | None = None  # RTE that gives GPUs, e.g. ENV/GPU
    image_root: str | None = None
    python: str = "python3"


def job_name(job: JobRecord) -> str:
    return f"{NAME_PREFIX}{job.id}"


def arex_inputs(job: JobRecord) -> list[tuple[str, str]]:
    """``(name, url)`` of the storage inputs A-REX's own data staging fetches (before the job)."""
    return [(i.name, i.url) for i in job.spec.stage_in if storage_stager.arex_can(i.url)]


def wrapper_files(job: JobRecord) -> list[str]:
    """Worker-side files beside the wrapper: its mover, when the wrapper moves some storage URL."""
    spec = storage_stager.wrapper_spec(job.spec)
    return [worker.TRANSFER] if spec.stage_in or spec.stage_out else []


def wrapper_args(job: JobRecord, opts: DescOptions) -> list[str]:
    """Arguments of the wrapper (argv after ``python3 cops_pilot.py``)."""
    # the session directory is the job's scratch (the wrapper would otherwise pick $TMPDIR)
    spec = storage_stager.wrapper_spec(job.spec)  # what A-REX does not stage itself
    argv = pilot_argv(spec, pilot=PILOT_FILE, python=opts.python, image_root=opts.image_root, workdir=".")
    return argv[2:]


def command_line(job: JobRecord, opts: DescOptions) -> tuple[str, list[str]]:
    """``(executable, arguments)``: the wrapper, or the launcher with the arguments as one
    ``b64:`` word when ARC's job script would expand some of them."""
    args = wrapper_args(job, opts)
    if not any(_EXPANDED.search(a) for a in args):
        return PILOT_FILE, args
    return LAUNCHER_FILE, ["b64:" + base64.urlsafe_b64encode(json.dumps(args).encode()).decode()]


def needs_launcher(job: JobRecord, opts: DescOptions) -> bool:
    return command_line(job, opts)[0] == LAUNCHER_FILE


def input_names(job: JobRecord, opts: DescOptions | None = None) -> list[str]:
    launcher = [LAUNCHER_FILE] if opts is not None and needs_launcher(job, opts) else []
    return [PILOT_FILE, *launcher, *wrapper_files(job), *(Path(p).name for p in job.spec.inputs)]


def output_names(job: JobRecord) -> list[str]:
    """Declared outputs: literal names as given; a glob keeps the whole session dir."""
    names = [STDOUT, STDERR, REPORT_NAME]
    for pattern in job.spec.outputs:
        names.append("/" if any(c in pattern for c in "*?[") else pattern)
    return list(dict.fromkeys(names))


def _rtes(job: JobRecord, opts: DescOptions) -> list[str]:
    rtes = list(opts.runtime_environments) + [str(r) for r in job.spec.backend_options.get("rte", [])]
    if job.spec.resources.gpus and opts.gpu_runtime_environment:
        rtes.append(opts.gpu_runtime_environment)
    return rtes


def adl(job: JobRecord, opts: DescOptions, delegation_id: str | None = None) -> str:
    """One ``ActivityDescription`` element."""
    res = job.spec.resources
    x = escape
    executable, argv = command_line(job, opts)
    args = "".join(f"<Argument>{x(a)}</Argument>" for a in argv)
    queue = job.spec.backend_options.get("queue") or opts.queue
    resources = [
        f"<QueueName>{x(str(queue))}</QueueName>" if queue else "",
        f"<IndividualPhysicalMemory>{res.memory}</IndividualPhysicalMemory>",
        f"<SlotRequirement><NumberOfSlots>{res.cores}</NumberOfSlots></SlotRequirement>",
        f"<WallTime>{res.walltime}</WallTime>",
        *(f"<RuntimeEnvironment><Name>{x(r)}</Name></RuntimeEnvironment>" for r in _rtes(job, opts)),
    ]
    staging = (
        [f"<nordugrid-adl:DelegationID>{x(delegation_id)}</nordugrid-adl:DelegationID>"]
        if delegation_id
        else []
    )
    staging += [
        f"<InputFile><Name>{x(n)}</Name>{_EXEC if n == executable else ''}</InputFile>"
        for n in input_names(job, opts)
    ]
    staging += [
        f"<InputFile><Name>{x(n)}</Name><Source><URI>{x(u)}</URI></Source></InputFile>"
        for n, u in arex_inputs(job)
    ]
    staging += [f"<OutputFile><Name>{x(n)}</Name></OutputFile>" for n in output_names(job)]
    return (
        f'<ActivityDescription xmlns="{ADL_NS}" xmlns:nordugrid-adl="{NG_NS}">'
        f"<ActivityIdentification><Name>{x(job_name(job))}</Name>"
        f"<Description>{x(job.spec.name)} in {x(job.spec.image)}</Description></ActivityIdentification>"
        f"<Application><Executable><Path>{executable}</Path>{args}</Executable>"
        f"<Output>{STDOUT}</Output><Error>{STDERR}</Error></Application>"
        f"<Resources>{''.join(resources)}</Resources>"
        f"<DataStaging>{''.join(staging)}</DataStaging>"
        "</ActivityDescription>"
    )


def adl_bulk(jobs: list[JobRecord], opts: DescOptions, delegation_id: str | None = None) -> str:
    """Several descriptions in one document: one ``POST jobs?action=new`` for all of them."""
    if len(jobs) == 1:
        return adl(jobs[0], opts, delegation_id)
    return (
        "<ActivityDescriptions>"
        + "".join(adl(j, opts, delegation_id) for j in jobs)
        + "</ActivityDescriptions>"
    )


def _rsl(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def xrsl(
    job: JobRecord,
    opts: DescOptions,
    delegation_id: str | None = None,
    sources: dict[str, str] | None = None,
) -> str:
    """The same job as xRSL (``--dry-run --format xrsl``, older CEs, ``arcsub``).

    ``sources`` maps input names to local paths ``arcsub`` uploads (default: none, the
    inputs are uploaded separately).
    """
    sources = sources or {}
    res = job.spec.resources
    queue = job.spec.backend_options.get("queue") or opts.queue
    executable, argv = command_line(job, opts)
    attrs = [
        f"(jobname={_rsl(job_name(job))})",
        f"(executable={_rsl(executable)})",
        "(arguments=" + " ".join(_rsl(a) for a in argv) + ")",
        f'(stdout="{STDOUT}")(stderr="{STDERR}")',
        "(inputfiles="
        + "".join(f"({_rsl(n)} {_rsl(sources.get(n, ''))})" for n in input_names(job, opts))
        + "".join(f"({_rsl(n)} {_rsl(u)})" for n, u in arex_inputs(job))
        + ")",
        "(outputfiles=" + "".join(f'({_rsl(n)} "")' for n in output_names(job)) + ")",
        f"(count={res.cores})",
        f"(memory={max(1, math.ceil(res.memory / 2**20 / res.cores))})",
        f"(walltime={max(1, math.ceil(res.walltime / 60))})",
    ]
    if queue:
        attrs.append(f"(queue={_rsl(str(queue))})")
    attrs += [f"(runtimeenvironment={_rsl(r)})" for r in _rtes(job, opts)]
    if delegation_id:
        attrs.append(f"(delegationid={_rsl(delegation_id)})")
    return "&" + "".join(attrs)
