"""ARC xRSL into the job model (syntax: :mod:`computeops_grid.jobs.formats.rsl`).

Mapping, with ARC's user-side units: ``jobname`` -> name; ``executable`` (relative: a file sent
with the job) + ``arguments`` -> command and arguments; ``environment`` -> environment;
``inputfiles`` with an empty or local source -> inputs; ``outputfiles`` -> outputs; ``count``
-> cores; ``memory`` (MB per slot) x count -> memory; ``walltime`` (minutes unless a unit is
given; else ``cputime`` / count) -> wall time. The container runtime environments
``ENV/SINGULARITY``, ``ENV/APPTAINER`` and ``ENV/CONTAINER`` with an image argument, and
``ENV/CONDOR/DOCKER`` with a Docker image, give the image (ARC's own RTEs run the job in it).
``queue`` and the other runtime environments stay backend options for ARC (``queue``, ``rte``).
Several requests (``+``) are several jobs, folded into one parametric job when only names,
arguments, environment and files differ; of ``|`` alternatives the first is read.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePath

from computeops_grid.jobs.formats import wrapper
from computeops_grid.jobs.formats.common import (
    ARC_BACKENDS,
    Context,
    Draft,
    Group,
    command_for,
    directory_glob,
    is_url,
    job_name,
    local_path,
    per_core_memory,
    shipped,
)
from computeops_grid.jobs.formats.rsl import Relation, Request, RslError, parse

# ARC's container runtime environments: the argument is the image (prefix added for Docker names)
CONTAINER_RTES = {
    "ENV/SINGULARITY": "",
    "ENV/APPTAINER": "",
    "ENV/CONTAINER": "",
    "ENV/CONDOR/DOCKER": "docker://",
}
_LOGS = {
    "stdout": "the job's output is kept as its log (`cops-grid logs`), not in a file",
    "stderr": "the job's errors are kept as its log (`cops-grid logs`), not in a file",
    "join": "stdout and stderr are kept apart (`cops-grid logs` shows both)",
    "gmlog": "A-REX's own diagnostics of the job are not collected",
}
_MAPPED = frozenset(
    [
        "executable",
        "arguments",
        "jobname",
        "inputfiles",
        "executables",
        "outputfiles",
        "environment",
        "count",
        "memory",
        "walltime",
        "cputime",
        "gridtime",
        "queue",
        "runtimeenvironment",
        "rslsubstitution",
    ]
)
_PERIOD_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_NEXT_BASE = {"w": 86400, "d": 3600, "h": 60, "m": 1, "s": 1}


def period(text: str, base: int = 60) -> int | None:
    """Seconds of an ARC period: ISO 8601 (``PT1H30M``), ``1h 30m``, or a number of ``base``
    seconds (minutes for user-side xRSL); a bare number after a unit counts in the next smaller one."""
    text = text.strip()
    if text.startswith("P"):
        found = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
        if not found:
            return None
        w, d, h, m, s = (int(g or 0) for g in found.groups())
        return (((w * 7 + d) * 24 + h) * 60 + m) * 60 + s
    seconds = 0
    for number, unit in re.findall(r"(\d+)\s*([A-Za-z]*)", text):
        letter = unit[:1].lower()
        if unit and letter not in _PERIOD_UNITS:
            return None
        seconds += int(number) * (_PERIOD_UNITS[letter] if unit else base)
        base = _NEXT_BASE.get(letter, base)
    return seconds if re.fullmatch(r"[\dA-Za-z\s]+", text) and re.search(r"\d", text) else None


class _Request:
    """The relations of one request by attribute, checked as ARC's XRSLParser checks them."""

    def __init__(self, request: Request, ctx: Context) -> None:
        self.ctx = ctx
        self.by: dict[str, list[Relation]] = {}
        for rel in request.relations:
            self.by.setdefault(rel.attribute, []).append(rel)
        for attribute, rels in self.by.items():
            if len(rels) > 1 and attribute not in ("runtimeenvironment", "rslsubstitution"):
                raise ctx.error("defined more than once", line=rels[1].line, attribute=rels[1].written)

    def rel(self, attribute: str) -> Relation | None:
        return self.by.get(attribute, [None])[0]

    def line(self, attribute: str) -> int | None:
        rel = self.rel(attribute)
        return rel.line if rel else None

    def single(self, attribute: str) -> str | None:
        rel = self.rel(attribute)
        if rel is None:
            return None
        if len(rel.values) != 1 or not isinstance(rel.values[0], str):
            raise self.ctx.error("takes one value", line=rel.line, attribute=rel.written)
        return rel.values[0]

    def strings(self, rel: Relation) -> list[str]:
        if not all(isinstance(v, str) for v in rel.values):
            raise self.ctx.error("takes a list of strings", line=rel.line, attribute=rel.written)
        return [str(v) for v in rel.values]

    def sequences(self, attribute: str, length: int = 0) -> list[list[str]]:
        rel = self.rel(attribute)
        if rel is None:
            return []
        found = []
        for value in rel.values:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.ctx.error('takes ("..." "...") sequences', line=rel.line, attribute=rel.written)
            if len(value) < 2 or (length and len(value) != length):
                raise self.ctx.error(
                    f"a sequence of {length or 'at least 2'} values expected", rel.line, rel.written
                )
            found.append([str(v) for v in value])
        return found

    def number(self, attribute: str) -> int | None:
        text = self.single(attribute)
        if text is None:
            return None
        if not re.fullmatch(r"\s*\d+\s*", text):
            raise self.ctx.error(f"{text!r} is not a whole number", self.line(attribute), attribute)
        return int(text)

    def time(self, attribute: str) -> int | None:
        text = self.single(attribute)
        if text is None:
            return None
        seconds = period(text)
        if not seconds:
            raise self.ctx.error(f"{text!r} is not a duration", self.line(attribute), attribute)
        return seconds


def _inputs(req: _Request, draft: Draft) -> None:
    ctx, line = req.ctx, req.line("inputfiles")
    for name, source, *options in req.sequences("inputfiles"):
        if options:
            ctx.ignore("inputfiles", line, f"{name}: transfer options {' '.join(options)}")
        if is_url(source):
            ctx.ignore(
                "inputfiles", line, f"{name} from {source}: remote staging is not part of the job model"
            )
            continue
        local = name if not source or re.fullmatch(r"\d+(\.\S*)?", source) else local_path(source)
        if PurePath(local).name != PurePath(name).name:
            ctx.note("inputfiles", line, f"{local} keeps its own name (not {name!r}) in the job's directory")
        draft.inputs.append(local)
    draft.origin["inputs"] = ("inputfiles", line)


def _outputs(req: _Request, draft: Draft) -> None:
    ctx, line = req.ctx, req.line("outputfiles")
    for name, target, *_ in req.sequences("outputfiles"):
        if is_url(target):
            ctx.ignore("outputfiles", line, f"{name} to {target}: the upload is not done (kept with the job)")
        draft.outputs.append(directory_glob(name, ctx, "outputfiles", line))
    draft.origin["outputs"] = ("outputfiles", line)


def _payload(req: _Request, draft: Draft) -> bool:
    """Command and arguments (image, environment and more in an xRSL cops-grid wrote); True if ours."""
    executable = req.single("executable")
    if not executable:
        raise req.ctx.error("required attribute is missing", attribute="executable", line=1)
    rel = req.rel("arguments")
    args = req.strings(rel) if rel else []
    call = wrapper.parse(executable, args) if wrapper.is_wrapper(executable) else None
    if call is not None:
        wrapper.apply(call, draft, req.ctx, "arguments", req.line("arguments"))
        draft.outputs = wrapper.own_outputs(draft.outputs, ("stdout", "stderr"))
        return True
    logs = {req.single("stdout"), req.single("stderr")} - {None, ""}
    draft.outputs = [o for o in draft.outputs if o not in logs]
    draft.command, draft.inputs = command_for(executable, shipped(executable, draft.inputs))
    draft.arguments = args
    if any(re.search(r"[$`]", a) for a in args):
        req.ctx.note(
            "arguments",
            req.line("arguments"),
            "A-REX's job script would expand $ and ` here; kept as written",
        )
    draft.origin.update(
        command=("executable", req.line("executable")), arguments=("arguments", req.line("arguments"))
    )
    return False


def _resources(req: _Request, draft: Draft) -> None:
    ctx = req.ctx
    draft.cores = req.number("count")
    memory = req.number("memory")
    if memory:
        draft.memory = per_core_memory(memory, draft.cores)
    wall, cpu, grid = req.time("walltime"), req.time("cputime"), req.time("gridtime")
    if wall or grid:
        draft.walltime = wall or grid
    elif cpu:
        draft.walltime = max(60, math.ceil(cpu / (draft.cores or 1)))
        ctx.note("cputime", req.line("cputime"), "read as the wall time: cputime / count")
    if wall and cpu:
        ctx.ignore("cputime", req.line("cputime"), "the job model has one time limit, walltime")
    draft.origin.update(
        cores=("count", req.line("count")), memory=("memory", req.line("memory")),
        walltime=("walltime" if wall else "cputime", req.line("walltime") or req.line("cputime")),
    )  # fmt: skip


def _environments(req: _Request, draft: Draft) -> None:
    """Runtime environments: ARC's container RTEs give the image; the others stay for ARC."""
    ctx, kept = req.ctx, []
    for rel in req.by.get("runtimeenvironment", []):
        name, *args = req.strings(rel)
        if name.upper() in CONTAINER_RTES and args and args[0] != "NULL":
            draft.image = CONTAINER_RTES[name.upper()] + args[0]
            continue
        if rel.op != "=" or args:
            ctx.note(
                rel.written,
                rel.line,
                f"{name}: only its name is kept (not {rel.op} {' '.join(args)})".replace(" =", ""),
            )
        kept.append(name)
    if kept:
        ctx.keep(draft, "runtimeenvironment", req.line("runtimeenvironment"), ("rte", kept), ARC_BACKENDS)


def _site(req: _Request, draft: Draft) -> None:
    queue = req.single("queue")
    rel = req.rel("queue")
    if queue and rel and rel.op == "=":
        req.ctx.keep(draft, rel.written, rel.line, ("queue", queue), ARC_BACKENDS)
    elif queue and rel:
        req.ctx.ignore(rel.written, rel.line, f"queue {rel.op} {queue}: only `queue=` is carried")
    _environments(req, draft)


def _leftovers(request: Request, ctx: Context, ours: bool) -> None:
    for rel in request.relations:
        if rel.attribute in _MAPPED:
            continue
        if rel.attribute in _LOGS:
            if not ours:
                ctx.note(rel.written, rel.line, _LOGS[rel.attribute])
        elif not (ours and rel.attribute == "delegationid"):
            ctx.ignore(rel.written, rel.line)
    if request.alternatives:
        ctx.ignore(
            "|", request.alternatives_line, f"{request.alternatives} alternative(s) after the first one"
        )


def _draft(request: Request, ctx: Context) -> Draft:
    req = _Request(request, ctx)
    draft = Draft(name="", command="")
    _inputs(req, draft)
    _outputs(req, draft)
    for name, value in req.sequences("environment", 2):
        draft.environment[name] = value
    draft.origin["environment"] = ("environment", req.line("environment"))
    ours = _payload(req, draft)
    _resources(req, draft)
    _site(req, draft)
    raw = req.single("jobname") or ""
    if ours and re.fullmatch(r"cops-[0-9a-f]{12}", raw):
        ctx.note("jobname", req.line("jobname"), f"{raw} is a cops-grid id: the job is named after the file")
        raw = ""
    draft.name = job_name(raw or ctx.stem, ctx, "jobname", req.line("jobname"))
    _leftovers(request, ctx, ours)
    return draft


def read(ctx: Context) -> list[Group]:
    try:
        requests = parse(ctx.text)
    except RslError as exc:
        raise ctx.error(f"not valid xRSL: {exc.message}", line=exc.line) from None
    drafts = [_draft(r, ctx) for r in requests]
    line = requests[0].relations[0].line if requests and requests[0].relations else 1
    return [Group(drafts, [{} for _ in drafts], line=line)]
