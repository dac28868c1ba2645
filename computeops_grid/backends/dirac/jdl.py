"""DIRAC JDL from the job model: one JDL per job, or one parametric JDL for a group.

The payload runs through the pilot wrapper: ``Executable`` is the wrapper file (shipped
in the input sandbox) and ``Arguments`` is the rest of :func:`pilot_argv`, shell-quoted
(DIRAC's job wrapper runs ``Executable Arguments`` through a shell). ``JobName`` embeds
the cops-grid id (``<name>.<id>``) so that ``lookup`` finds a job after a crash.

A parametric JDL is used only when DIRAC can express it exactly: DIRAC splits parameter
lists on commas and replaces ``%n``/``%s`` in the whole text, so the values that differ
between the jobs must be plain words (see ``_SAFE``); otherwise the caller submits a
plain bulk of single JDLs.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.WorkloadManagementSystem.DB.JobDBUtils import checkAndAddOwner
from DIRACCommon.WorkloadManagementSystem.Utilities.ParametricJob import getParameterVectorLength

from computeops_grid import worker
from computeops_grid.backends.common.payload import PILOT_FILE, REPORT_NAME, pilot_argv
from computeops_grid.errors import JobFileError
from computeops_grid.jobs.record import JobRecord

LAUNCHER_FILE = worker.DIRAC_LAUNCHER
STDOUT = "std.out"
STDERR = "std.err"
MIN_CPU_TIME = 100  # DIRAC's default MinCPUTime; lower values are refused by the server
_SAFE = re.compile(r"^[A-Za-z0-9_.:/=+@-]*$")
Value = Union[str, int, list[str]]
_UNCARRIABLE = re.compile(r'["\[;\n\r\x00]')
_UNCARRIABLE_IN_LIST = re.compile(r'["\[;\n\r\x00,{}]')  # list items are split on commas
_FIELD_OF = {
    "Arguments": "arguments",
    "JobName": "name",
    "OutputSandbox": "outputs",
    "InputSandbox": "inputs",
}
OPTION_KEYS = frozenset({"site", "banned_sites", "platform", "priority", "job_group", "tags", "job_type"})


@dataclass(frozen=True)
class JdlOptions:
    """Site-level choices (from the backend settings, overridable per job in ``backend_options``)."""

    python: str = "python3"
    image_root: str | None = None
    site: list[str] = field(default_factory=list)
    banned_sites: list[str] = field(default_factory=list)
    platform: str | None = None
    priority: int | None = None
    job_group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)

    def for_job(self, record: JobRecord) -> JdlOptions:
        opts = record.spec.backend_options
        unknown = sorted(set(opts) - OPTION_KEYS)
        if unknown:
            raise JobFileError(
                f"unknown DIRAC option(s) {', '.join(unknown)}",
                path=record.source,
                field=f"backend_options.{unknown[0]}",
                hint=f"known options: {', '.join(sorted(OPTION_KEYS))}",
            )
        if not opts:
            return self
        values = {k: v for k, v in opts.items() if k in OPTION_KEYS}
        for key in ("site", "banned_sites", "tags"):
            if isinstance(values.get(key), str):
                values[key] = [values[key]]
        return JdlOptions(**{**self.__dict__, **values})


def quote(value: str, attribute: str = "", *, in_list: bool = False) -> str:
    """A JDL string literal. DIRAC's parser has no escapes: it drops every ``"``, ends the
    value at ``;`` and loops forever on ``[``, so such characters are refused up front."""
    bad = (_UNCARRIABLE_IN_LIST if in_list else _UNCARRIABLE).search(value)
    if bad:
        raise JobFileError(
            f"JDL attribute {attribute or '?'}: the value {value!r} contains {bad.group()!r}, "
            "which DIRAC's JDL parser cannot carry",
            field=_FIELD_OF.get(attribute, ""),
            hint="remove the character, or pass the value in an input file instead",
        )
    return f'"{value}"'


def render(attrs: Mapping[str, Value]) -> str:
    lines = []
    for key, value in attrs.items():
        if isinstance(value, list):
            text = "{" + ", ".join(quote(v, key, in_list=True) for v in value) + "}"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = quote(value, key)
        lines.append(f"    {key} = {text};")
    return "[\n" + "\n".join(lines) + "\n]\n"


def job_name(record: JobRecord) -> str:
    return f"{record.spec.name}.{record.id}"


def arguments(record: JobRecord, opts: JdlOptions) -> list[str]:
    """The wrapper's arguments (``pilot_argv`` without the interpreter and the file).

    ``--workdir .``: DIRAC runs a job in its own directory, where the sandboxes are.
    """
    argv = pilot_argv(
        record.spec, pilot=PILOT_FILE, python=opts.python, image_root=opts.image_root, workdir="."
    )
    return argv[2:]


def command_line(args: list[str]) -> tuple[str, list[str]]:
    """``(Executable, arguments)``: the wrapper itself when DIRAC can carry its arguments,
    else the launcher with the arguments as one ``b64:`` word (JSON list, urlsafe base64)."""
    if not _UNCARRIABLE.search(shlex.join(args)):  # joined: quoting a `'` brings in `"`
        return PILOT_FILE, args
    encoded = base64.urlsafe_b64encode(json.dumps(args).encode()).decode()
    return LAUNCHER_FILE, [f"b64:{encoded}"]


def output_sandbox(record: JobRecord) -> list[str]:
    return [STDOUT, STDERR, REPORT_NAME, *record.spec.outputs]


def attributes(record: JobRecord, sandbox: Sequence[str], opts: JdlOptions) -> dict[str, Value]:
    """The JDL attributes of one job; ``sandbox`` are the input sandbox entries (``SB:`` PFNs)."""
    res = record.spec.resources
    executable, args = command_line(arguments(record, opts))
    attrs: dict[str, Value] = {
        "JobName": job_name(record),
        "Executable": executable,
        "Arguments": shlex.join(args),
        "StdOutput": STDOUT,
        "StdError": STDERR,
        "InputSandbox": list(sandbox),
        "OutputSandbox": output_sandbox(record),
        "CPUTime": max(MIN_CPU_TIME, res.walltime * res.cores),
        "NumberOfProcessors": res.cores,
        "MinRAM": max(1, res.memory // 2**20),
    }
    tags = list(opts.tags)
    if res.cores > 1:
        tags += ["MultiProcessor", f"{res.cores}Processors"]
    if res.gpus:
        tags.append("GPU")
        attrs["NumberOfGPUs"] = res.gpus
    if tags:
        attrs["Tags"] = sorted(set(tags))
    optional: dict[str, Value | None] = {
        "Site": opts.site or None,
        "BannedSites": opts.banned_sites or None,
        "Platform": opts.platform,
        "Priority": opts.priority,
        "JobGroup": opts.job_group,
        "JobType": opts.job_type,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    return attrs


def single_jdl(record: JobRecord, sandbox: Sequence[str], opts: JdlOptions) -> str:
    return render(attributes(record, sandbox, opts.for_job(record)))


def _varying(argvs: list[list[str]]) -> tuple[list[str], dict[str, list[str]]] | None:
    """The argument template and the named sequences of the positions that differ."""
    if len({len(a) for a in argvs}) != 1:
        return None
    template = list(argvs[0])
    sequences: dict[str, list[str]] = {}
    for pos in range(len(template)):
        column = [a[pos] for a in argvs]
        if len(set(column)) == 1:
            continue
        if any(not _SAFE.match(v) for v in column):
            return None
        sequences[f"a{pos}"] = column
        template[pos] = f"%(a{pos})s"
    return template, sequences


def _invariant(attrs: dict[str, Value]) -> dict[str, Value]:
    return {k: v for k, v in attrs.items() if k not in ("JobName", "Arguments")}


def parametric_jdl(records: Sequence[JobRecord], sandbox: Sequence[str], opts: JdlOptions) -> str | None:
    """One DIRAC parametric JDL for ``records`` (one bulk), or ``None`` if DIRAC cannot express it.

    ``Parameters`` carries the job names (``JobName = "%s"``); each argument position
    that differs between the jobs becomes a named sequence ``Parameters.aN``.
    """
    job_opts = opts.for_job(records[0])
    if len(records) < 2 or any(opts.for_job(r) != job_opts for r in records):
        return None
    base = attributes(records[0], sandbox, job_opts)
    names = [job_name(r) for r in records]
    varying = _varying([command_line(arguments(r, job_opts))[1] for r in records])
    same = all(_invariant(attributes(r, sandbox, job_opts)) == _invariant(base) for r in records[1:])
    # a literal %n/%s anywhere in the job would be replaced by DIRAC too
    if varying is None or not same or any(not _SAFE.match(n) for n in names) or "%" in render(base):
        return None
    template, sequences = varying
    base["JobName"] = "%s"
    base["Arguments"] = shlex.join(template).replace("'%(", "%(").replace(")s'", ")s")
    base["Parameters"] = names
    for key, values in sequences.items():
        base[f"Parameters.{key}"] = values
    return render(base)


_JOB_MANIFEST_DEFAULTS: dict[str, object] = {
    "defaultForGroup": {"CPUTime": 86400, "Priority": 1},
    "minForGroup": {"CPUTime": MIN_CPU_TIME, "Priority": 0},
    "maxForGroup": {"CPUTime": 500000, "Priority": 10},
    "allowedJobTypesForGroup": ["User", "Test"],
    "maxInputData": 100,
}


def offline_check(text: str) -> str | None:
    """The first problem DIRAC's own parser and checks find in ``text`` (``None`` if none).

    Uses DIRACCommon (the code the server runs) with DIRAC's default limits.
    """
    if not ClassAd(text).isOK():
        return "the JDL does not parse as a ClassAd"
    vector = getParameterVectorLength(ClassAd(text))
    if not vector["OK"]:
        return str(vector["Message"])
    res = checkAndAddOwner(text, "cops-grid", "cops-grid", job_manifest_config=_JOB_MANIFEST_DEFAULTS)
    return None if res["OK"] else str(res["Message"])


def diagnose(text: str, server_message: str) -> str:
    """Explain a server refusal: the server says only "JDL syntax error", so name the attribute."""
    found = offline_check(text)
    if found:
        return f"{server_message}; DIRAC's JDL check says: {found}"
    if re.search(r"^\s*Platform\s*=", text, re.MULTILINE):
        return (
            f"{server_message}; the JDL sets Platform, which this server refuses "
            "(DiracX 0.7.0 cannot check platforms): remove backend_options.platform / the platform setting"
        )
    return server_message
