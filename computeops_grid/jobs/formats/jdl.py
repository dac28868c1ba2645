"""DIRAC JDL into the job model, read with DIRACCommon's own ClassAd parser.

One file may hold several ``[ ... ]`` ClassAds (or one without brackets); ``#`` and ``//``
comment lines are skipped. DIRAC's parser has no escapes and cannot read a ``;`` inside a
string or a nested ``[``: such a file is refused with the line, as DIRAC would misread it.

Mapping: ``JobName`` -> name; ``Executable`` + ``Arguments`` (DIRAC runs them through a shell:
plain words are split as the shell would, anything using the shell runs as ``/bin/sh -c``) ->
command and arguments; ``ExecutionEnvironment`` (or gLite's ``Environment``) -> environment;
``InputSandbox`` / ``OutputSandbox`` -> inputs / outputs; ``NumberOfProcessors`` (or the
``<N>Processors`` tag) -> cores; ``MinRAM`` (MB) -> memory; ``CPUTime`` / processors -> wall
time; ``NumberOfGPUs`` -> gpus. ``Site``, ``BannedSites``, ``Platform``, ``Priority``,
``JobGroup``, ``JobType`` and other ``Tags`` stay backend options for DIRAC backends.
``Parameters`` (a list or a count with ``ParameterStart``/``ParameterStep``/``ParameterFactor``)
and named sequences ``Parameters.<name>`` expand as DIRAC expands them (``%s``, ``%(name)s``,
``%n``). DIRAC has no per-job container image (its sites choose one): the image comes from
``--image``, or from the wrapper's command line in a JDL cops-grid wrote.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Any, Union

from computeops_grid import extras
from computeops_grid.jobs.formats import wrapper
from computeops_grid.jobs.formats.common import DIRAC_BACKENDS, Context, Draft, Group, command_for, job_name

Value = Union[str, list[str]]
_SHELL = re.compile(r"[$`|&<>*?~(){}\\]")
_MAPPED = frozenset(
    [
        "jobname",
        "executable",
        "arguments",
        "executionenvironment",
        "environment",
        "inputsandbox",
        "outputsandbox",
        "stdoutput",
        "stderror",
        "numberofprocessors",
        "minnumberofprocessors",
        "maxnumberofprocessors",
        "minram",
        "maxram",
        "cputime",
        "numberofgpus",
        "tags",
        "site",
        "bannedsites",
        "bannedsite",
        "platform",
        "priority",
        "jobgroup",
        "jobtype",
    ]
)
_DATA = frozenset(
    {"inputdata", "inputdatapolicy", "outputdata", "outputse", "outputpath", "parametricinputdata"}
)


@dataclass
class Ad:
    """One ClassAd: its attribute values (DIRAC's reading) and lines, by lower-case name."""

    names: dict[str, str]
    values: dict[str, Value]
    lines: dict[str, int | None]
    ints: dict[str, int | None]
    raw: Any  # DIRAC's ClassAd


def _strip_comments(text: str) -> str:
    return re.sub(r"^[ \t]*(#|//).*$", "", text, flags=re.MULTILINE)


def _classads(text: str, ctx: Context) -> list[tuple[str, int]]:
    """The top-level ``[ ... ]`` blocks and their first lines (a bare JDL is one block)."""
    if not text.lstrip().startswith("["):
        return [("[\n" + text + "\n]", 0)]
    blocks, depth, start, quoted = [], 0, 0, False
    for pos, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "[]":
            depth += 1 if char == "[" else -1
            if depth == 1 and char == "[":
                start = pos
            elif depth == 0:
                blocks.append((text[start : pos + 1], text.count("\n", 0, start) + 1))
            elif depth < 0:
                raise ctx.error("']' without its '['", line=text.count("\n", 0, pos) + 1)
    if depth or quoted:
        raise ctx.error("the JDL ends inside a ClassAd or a string (a ']' or '\"' is missing)")
    return blocks


def _check(block: str, first: int, ctx: Context) -> None:
    """Refuse what DIRAC's parser misreads: ``;`` in a string, brackets inside the ClassAd."""
    body = block[1:-1]
    for match in re.finditer(r'"[^"]*"|[\[\]]', body):
        text = match.group()
        bad = (";" if ";" in text else None) if text.startswith('"') else text
        if bad:
            names = re.findall(r"([A-Za-z][\w.]*)\s*=", body[: match.start()])
            raise ctx.error(
                f"{bad!r} inside a value: DIRAC's JDL parser cannot read it",
                line=max(1, first + body.count("\n", 0, match.start())),
                attribute=names[-1] if names else "",
                hint="remove it (nested ClassAds and ';' in strings are not supported by DIRAC)",
            )


def _line(block: str, name: str, first: int) -> int | None:
    match = re.search(rf"(^|[\[;])\s*{re.escape(name)}\s*=", block, re.MULTILINE)
    return max(1, first + block.count("\n", 0, match.end())) if match else None


def _parse(block: str, first: int, ctx: Context) -> Ad:
    with extras.needed("reading JDL files", "diracx"):
        from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd  # noqa: PLC0415

    _check(block, first, ctx)
    ad = ClassAd(block)
    if not ad.isOK():
        raise ctx.error("not a JDL: no `Name = value;` attribute found", line=max(first, 1))
    names = {n.lower(): n for n in ad.getAttributes()}
    return Ad(
        names=names,
        values={
            low: ad.getListFromExpression(n) if ad.isAttributeList(n) else ad.getAttributeString(n)
            for low, n in names.items()
        },
        lines={low: _line(block, n, first) for low, n in names.items()},
        ints={low: ad.getAttributeInt(n) for low, n in names.items()},
        raw=ad,
    )


_PARAM_KEYS = ("Parameters", "ParameterStart", "ParameterStep", "ParameterFactor")


def _is_param(name: str) -> bool:
    return name.startswith(_PARAM_KEYS)


def _sequence(count: int, spec: dict[str, Any]) -> list[str]:
    """DIRAC's parameter sequence (``ParametricJob.__getParameterSequence``, same arithmetic)."""
    if "list" in spec:
        return [str(v) for v in spec["list"]]
    start, step, factor = (
        spec.get("ParameterStart", 1),
        spec.get("ParameterStep", 0),
        spec.get("ParameterFactor", 1),
    )
    values = [start * type(factor)(1) + type(step)(0)]
    for _ in range(1, count):
        values.append(values[-1] * factor + step)
    return [str(v) for v in values]


def _sequences(ad: Ad, ctx: Context) -> tuple[int, dict[str, list[str]]]:
    """The number of jobs and each sequence's values (``"0"`` is ``Parameters`` itself)."""
    from DIRACCommon.WorkloadManagementSystem.Utilities.ParametricJob import (  # noqa: PLC0415
        getParameterVectorLength,
    )

    raw = ad.raw
    length = getParameterVectorLength(raw)
    first = next((ad.lines[n.lower()] for n in ad.names.values() if _is_param(n)), None)
    if not length["OK"]:
        raise ctx.error(str(length["Message"]), line=first, attribute="Parameters")
    count = length["Value"]
    if count is None or "Parameters" not in raw.getAttributes():  # DIRAC expands only with `Parameters`
        for name in (n for n in raw.getAttributes() if _is_param(n)):
            ctx.ignore(
                name, ad.lines[name.lower()], "DIRAC expands parameter sequences only with `Parameters`"
            )
        return 1, {}
    specs: dict[str, dict[str, Any]] = {}
    for name in raw.getAttributes():
        key = next((k for k in _PARAM_KEYS if name.startswith(k)), None)
        if key is None:
            continue
        seq = name.split(".", 1)[1] if "." in name else "0"
        spec = specs.setdefault(seq, {})
        if key != "Parameters":
            value = raw.getAttributeInt(name)
            spec[key] = value if value is not None else raw.getAttributeFloat(name)
            if spec[key] is None:
                raise ctx.error("must be a number", line=ad.lines[name.lower()], attribute=name)
        elif raw.isAttributeList(name):
            spec["list"] = raw.getListFromExpression(name)
        elif name != "Parameters":
            raise ctx.error("a named sequence must be a list", line=ad.lines[name.lower()], attribute=name)
        else:
            spec["count"] = count
    return count, {seq: _sequence(count, spec) for seq, spec in specs.items() if spec}


def _hint_name(seq: str, taken: set[str]) -> str:
    name = "param" if seq == "0" else re.sub(r"\W", "_", seq)
    return name if name not in taken and name != "index" else f"{name}_"


def _substitute(value: Value, number: str, row: dict[str, str]) -> Value:
    """DIRAC's textual substitution: ``%n`` first, then ``%s`` and ``%(name)s``."""

    def sub(text: str) -> str:
        text = text.replace("%n", number)
        for seq, val in row.items():
            text = text.replace("%s" if seq == "0" else f"%({seq})s", val.strip())
        return text

    return sub(value) if isinstance(value, str) else [sub(v) for v in value]


def _rows(ad: Ad, ctx: Context) -> list[tuple[dict[str, Value], dict[str, str]]]:
    """Each job's attribute values and variables, as DIRAC's ``generateParametricJobs`` makes them."""
    count, sequences = _sequences(ad, ctx)
    plain = {low: v for low, v in ad.values.items() if not _is_param(ad.names[low])}
    if not sequences:
        return [(plain, {})]
    width = len(str(count - 1))
    names: dict[str, str] = {}
    for seq in sequences:
        names[seq] = _hint_name(seq, set(names.values()))
    rows = []
    for index in range(count):
        row = {seq: values[index] for seq, values in sequences.items()}
        number = str(index).zfill(width)
        hints = {names[seq]: v.strip() for seq, v in row.items()}
        if width > 1:  # %n is zero-padded: not always the index
            hints["n"] = number
        rows.append(({low: _substitute(v, number, row) for low, v in plain.items()}, hints))
    return rows


def _text(values: dict[str, Value], key: str) -> str:
    value = values.get(key, "")
    return value if isinstance(value, str) else ",".join(value)


def _items(values: dict[str, Value], key: str) -> list[str]:
    value = values.get(key, [])
    return [value] if isinstance(value, str) and value else list(value) if isinstance(value, list) else []


def _payload(draft: Draft, values: dict[str, Value], ad: Ad, ctx: Context) -> bool:
    """Command, arguments (and, in a JDL cops-grid wrote, image and environment); True if ours."""
    executable, text = _text(values, "executable"), _text(values, "arguments")
    line = ad.lines.get("arguments")
    if not executable:
        raise ctx.error("required attribute is missing", line=ad.lines.get("jobname"), attribute="Executable")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ctx.error(f"cannot split like a shell: {exc}", line=line, attribute="Arguments") from None
    call = wrapper.parse(executable, words) if wrapper.is_wrapper(executable) else None
    if call is not None:
        wrapper.apply(call, draft, ctx, "Arguments", line)
        return True
    by_shell = "Executable" if _SHELL.search(executable) else ""
    if not by_shell:
        draft.command, draft.inputs = command_for(executable, draft.inputs)
        by_shell = "Arguments" if _SHELL.search(re.sub(r"'[^']*'", "", text)) else ""
    if by_shell:
        shown = ad.lines.get(by_shell.lower())
        ctx.note(by_shell, shown, "uses the shell ($, |, >, ...): run with /bin/sh -c, as DIRAC runs it")
        draft.arguments = ["-c", f"{draft.command or executable} {text}".strip()]
        draft.command = "/bin/sh"
    else:
        draft.arguments = words
    draft.origin.update(command=("Executable", ad.lines.get("executable")), arguments=("Arguments", line))
    return False


def _environment(draft: Draft, values: dict[str, Value], ad: Ad, ctx: Context) -> None:
    for key in ("executionenvironment", "environment"):
        for item in _items(values, key):
            name, eq, value = item.partition("=")
            if not eq:
                raise ctx.error(f"{item!r} is not NAME=value", line=ad.lines[key], attribute=ad.names[key])
            draft.environment[name.strip()] = value
            draft.origin["environment"] = (ad.names[key], ad.lines[key])


def _sandboxes(draft: Draft, values: dict[str, Value], ad: Ad, ctx: Context) -> None:
    line = ad.lines.get("inputsandbox")
    for item in _items(values, "inputsandbox"):
        if item.upper().startswith("LFN:"):
            ctx.ignore("InputSandbox", line, f"{item}: catalogue files are not part of the job model")
        elif item.startswith("SB:"):
            ctx.ignore(
                "InputSandbox", line, f"{item}: a sandbox already on a DIRAC server (files not listed)"
            )
        else:
            draft.inputs.append(item)
    logs = {_text(values, "stdoutput"), _text(values, "stderror")} - {""}
    draft.outputs = [o for o in _items(values, "outputsandbox") if o not in logs]
    draft.origin.update(
        inputs=("InputSandbox", line), outputs=("OutputSandbox", ad.lines.get("outputsandbox"))
    )


def _first(ad: Ad, ctx: Context, keys: tuple[str, ...]) -> int | None:
    """The first of ``keys`` that is set; the others, when set too, are noted as not used."""
    found = [k for k in keys if ad.ints.get(k)]
    for other in found[1:]:
        ctx.ignore(ad.names[other], ad.lines[other], f"the job model takes one value: {ad.names[found[0]]}")
    return ad.ints[found[0]] if found else None


def _resources(draft: Draft, ad: Ad, tags: list[str], ctx: Context, ours: bool) -> list[str]:
    """Cores, memory, wall time and GPUs; returns the tags left for the site."""
    tagged = [int(t[: -len("Processors")]) for t in tags if re.fullmatch(r"\d+Processors", t)]
    draft.cores = _first(ad, ctx, ("numberofprocessors", "maxnumberofprocessors", "minnumberofprocessors"))
    draft.cores = draft.cores or next(iter(tagged), None)
    megabytes = _first(ad, ctx, ("minram", "maxram"))
    draft.memory = megabytes * 2**20 if megabytes else None
    cpu = ad.ints.get("cputime")
    if cpu:
        draft.walltime = max(60, math.ceil(cpu / (draft.cores or 1)))
        if not ours:
            ctx.note("CPUTime", ad.lines.get("cputime"), "read as the wall time: CPUTime / processors")
    if ad.ints.get("numberofgpus") or "GPU" in tags:
        draft.gpus = ad.ints.get("numberofgpus") or draft.gpus or 1
    draft.origin.update(
        cores=("NumberOfProcessors", ad.lines.get("numberofprocessors")),
        memory=("MinRAM", ad.lines.get("minram")),
        walltime=("CPUTime", ad.lines.get("cputime")),
    )
    used = {"MultiProcessor", "GPU", *(f"{n}Processors" for n in tagged)}
    return [t for t in tags if t not in used]


def _site(draft: Draft, values: dict[str, Value], ad: Ad, ctx: Context, ours: bool) -> None:
    """Site-specific attributes: backend options for DIRAC backends."""
    tags = _resources(draft, ad, _items(values, "tags"), ctx, ours)
    options: dict[str, tuple[str, Any]] = {
        "site": ("site", _items(values, "site")),
        "bannedsites": ("banned_sites", _items(values, "bannedsites")),
        "bannedsite": ("banned_sites", _items(values, "bannedsite")),
        "platform": ("platform", _text(values, "platform")),
        "priority": ("priority", ad.ints.get("priority")),
        "jobgroup": ("job_group", _text(values, "jobgroup")),
        "jobtype": ("job_type", _text(values, "jobtype")),
        "tags": ("tags", tags),
    }
    for low, (key, value) in options.items():
        if low in ad.names and value not in (None, "", []):
            if ours and key == "job_group" and str(value).startswith("cops-"):
                continue  # the legacy backend's own group
            ctx.keep(draft, ad.names[low], ad.lines[low], (key, value), DIRAC_BACKENDS)


def _leftovers(ad: Ad, ctx: Context, ours: bool) -> None:
    for low, name in ad.names.items():
        if low in _MAPPED or _is_param(name):
            if low in ("stdoutput", "stderror") and not ours:
                ctx.note(
                    name,
                    ad.lines[low],
                    "the job's output is kept as its log (`cops-grid logs`), not in a file",
                )
            continue
        why = "data management is not part of the job model" if low in _DATA else ""
        ctx.ignore(name, ad.lines[low], why)


def _draft(values: dict[str, Value], ad: Ad, ctx: Context) -> Draft:
    raw_name = _text(values, "jobname")
    draft = Draft(name="", command="")
    _sandboxes(draft, values, ad, ctx)
    _environment(draft, values, ad, ctx)
    ours = _payload(draft, values, ad, ctx)
    if ours:
        raw_name = re.sub(r"\.[0-9a-f]{12}$", "", raw_name)  # `<name>.<cops-grid id>`
        draft.inputs = wrapper.own_inputs(draft.inputs)
        draft.outputs = wrapper.own_outputs(draft.outputs)
    draft.name = job_name(raw_name or ctx.stem, ctx, "JobName", ad.lines.get("jobname"))
    _site(draft, values, ad, ctx, ours)
    return draft


def read(ctx: Context) -> list[Group]:
    groups = []
    for block, first in _classads(_strip_comments(ctx.text), ctx):
        ad = _parse(block, first, ctx)
        rows = _rows(ad, ctx)
        drafts = [_draft(values, ad, ctx) for values, _ in rows]
        ours = wrapper.is_wrapper(_text(rows[0][0], "executable"))
        _leftovers(ad, ctx, ours)
        line = first or min((n for n in ad.lines.values() if n), default=1)  # `[`, or the first attribute
        groups.append(Group(drafts, [hints for _, hints in rows], line=line, ours=ours))
    return groups
