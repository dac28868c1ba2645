"""ARC's ADL (EMI-ES ActivityDescription, XML) into the job model, read with the standard
library's expat parser (no DOCTYPE, hence no entities, is accepted).

Mapping: ``ActivityIdentification/Name`` -> name; ``Application/Executable`` (``Path``,
``Argument``) -> command and arguments; ``Application/Environment`` -> environment;
``DataStaging/InputFile`` without a remote ``Source`` -> inputs; ``DataStaging/OutputFile`` ->
outputs; ``SlotRequirement/NumberOfSlots`` -> cores; ``IndividualPhysicalMemory`` (bytes per
slot) x slots -> memory; ``WallTime`` (else ``TotalCPUTime`` / slots, seconds) -> wall time. A
container runtime environment (``ENV/SINGULARITY`` ... with the image as ``Option``) gives the
image; ``QueueName`` and the other runtime environments stay backend options for ARC.
Several ``ActivityDescription`` in one document are several jobs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from xml.parsers import expat

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
    shipped,
)
from computeops_grid.jobs.formats.xrsl import CONTAINER_RTES

_LOGS = {
    "Output": "the job's output is kept as its log (`cops-grid logs`), not in a file",
    "Error": "the job's errors are kept as its log (`cops-grid logs`), not in a file",
    "LoggingDirectory": "A-REX's own diagnostics of the job are not collected",
}
_MAPPED_RESOURCES = frozenset(
    {
        "QueueName",
        "IndividualPhysicalMemory",
        "SlotRequirement",
        "WallTime",
        "TotalCPUTime",
        "IndividualCPUTime",
        "RuntimeEnvironment",
    }
)


@dataclass
class Node:
    tag: str  # local name, without namespace
    line: int
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def all(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def first(self, tag: str) -> Node | None:
        return next(iter(self.all(tag)), None)

    def value(self, tag: str) -> str | None:
        node = self.first(tag)
        return node.text.strip() if node is not None else None


def parse_xml(text: str, ctx: Context) -> Node:
    """The document as :class:`Node` s with their lines; DOCTYPE (entities) refused."""
    parser = expat.ParserCreate(namespace_separator=" ")
    root = Node("", 0)
    stack = [root]

    def start(tag: str, _attrs: dict[str, str]) -> None:
        node = Node(tag.rsplit(" ", 1)[-1], parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        stack[-1].text += data

    def doctype(*_: object) -> None:
        raise ctx.error("a DOCTYPE is not accepted in an ADL", line=parser.CurrentLineNumber)

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler, parser.StartDoctypeDeclHandler = chars, doctype
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise ctx.error(f"not valid XML: {expat.errors.messages[exc.code]}", line=exc.lineno) from None
    if not root.children:
        raise ctx.error("no XML element found")
    return root.children[0]


def _staging(activity: Node, draft: Draft, ctx: Context) -> None:
    staging = activity.first("DataStaging") or Node("DataStaging", activity.line)
    for node in staging.all("InputFile"):
        name, source = node.value("Name") or "", (node.first("Source") or Node("", 0)).value("URI") or ""
        if is_url(source):
            ctx.ignore(
                "InputFile", node.line, f"{name} from {source}: remote staging is not part of the job model"
            )
            continue
        draft.inputs.append(local_path(source) if source else name)
        draft.origin.setdefault("inputs", ("InputFile", node.line))
    for node in staging.all("OutputFile"):
        name, target = node.value("Name") or "", (node.first("Target") or Node("", 0)).value("URI") or ""
        if target and is_url(target):
            ctx.ignore(
                "OutputFile", node.line, f"{name} to {target}: the upload is not done (kept with the job)"
            )
        draft.outputs.append(directory_glob(name, ctx, "OutputFile", node.line))
        draft.origin.setdefault("outputs", ("OutputFile", node.line))
    for node in staging.children:
        if node.tag == "DelegationID":
            ctx.ignore(
                node.tag, node.line, "a delegation belongs to one submission (cops-grid delegates its own)"
            )
        elif node.tag not in ("InputFile", "OutputFile"):
            ctx.ignore(node.tag, node.line)


def _application(activity: Node, draft: Draft, ctx: Context) -> bool:
    app = activity.first("Application") or Node("Application", activity.line)
    executable = app.first("Executable")
    path = executable.value("Path") if executable is not None else None
    if executable is None or not path:
        raise ctx.error("required element is missing", line=app.line, attribute="Application/Executable/Path")
    args = [a.text for a in executable.all("Argument")]
    for env in app.all("Environment"):
        draft.environment[env.value("Name") or ""] = env.value("Value") or ""
        draft.origin["environment"] = ("Environment", env.line)
    call = wrapper.parse(path, args) if wrapper.is_wrapper(path) else None
    if call is not None:
        wrapper.apply(call, draft, ctx, "Argument", executable.line)
        draft.outputs = wrapper.own_outputs(draft.outputs, ("stdout", "stderr"))
    else:
        logs = {app.value("Output"), app.value("Error")} - {None, ""}
        draft.outputs = [o for o in draft.outputs if o not in logs]
        draft.command, draft.inputs = command_for(path, shipped(path, draft.inputs))
        draft.arguments = args
        draft.origin.update(command=("Executable", executable.line), arguments=("Argument", executable.line))
    for node in app.children:
        if node.tag in _LOGS and call is None:
            ctx.note(node.tag, node.line, _LOGS[node.tag])
        elif node.tag not in (*_LOGS, "Executable", "Environment"):
            ctx.ignore(node.tag, node.line)
    return call is not None


def _number(node: Node | None, ctx: Context) -> int | None:
    if node is None:
        return None
    if not re.fullmatch(r"\s*\d+\s*", node.text):
        raise ctx.error(f"{node.text.strip()!r} is not a whole number", line=node.line, attribute=node.tag)
    return int(node.text)


def _rtes(resources: Node, draft: Draft, ctx: Context) -> None:
    kept, first = [], None
    for node in resources.all("RuntimeEnvironment"):
        first = first or node.line
        name, options = node.value("Name") or "", [o.text.strip() for o in node.all("Option")]
        if name.upper() in CONTAINER_RTES and options and options[0] != "NULL":
            draft.image = CONTAINER_RTES[name.upper()] + options[0]
            continue
        if options or node.first("Version") is not None:
            ctx.note("RuntimeEnvironment", node.line, f"{name}: only its name is kept")
        kept.append(name)
    if kept:
        ctx.keep(draft, "RuntimeEnvironment", first, ("rte", kept), ARC_BACKENDS)


def _resources(activity: Node, draft: Draft, ctx: Context, ours: bool) -> None:
    res = activity.first("Resources") or Node("Resources", activity.line)
    slots = res.first("SlotRequirement") or Node("SlotRequirement", res.line)
    draft.cores = _number(slots.first("NumberOfSlots"), ctx)
    memory = _number(res.first("IndividualPhysicalMemory"), ctx)
    if memory:  # per slot, as A-REX reads it; the description cops-grid writes holds the total
        draft.memory = memory if ours else memory * (draft.cores or 1)
    wall = _number(res.first("WallTime"), ctx)
    cpu = _number(res.first("TotalCPUTime"), ctx) or _number(res.first("IndividualCPUTime"), ctx)
    if wall or cpu:
        draft.walltime = wall or max(60, math.ceil((cpu or 0) / (draft.cores or 1)))
        if not wall:
            cpu_node = res.first("TotalCPUTime") or res.first("IndividualCPUTime") or res
            ctx.note(cpu_node.tag, cpu_node.line, "read as the wall time: CPU time / slots")
    for tag in ("NumberOfSlots", "IndividualPhysicalMemory", "WallTime"):
        node = res.first(tag) or slots.first(tag)
        if node is not None:
            draft.origin[
                {"NumberOfSlots": "cores", "IndividualPhysicalMemory": "memory"}.get(tag, "walltime")
            ] = (tag, node.line)
    queue = res.value("QueueName")
    if queue:
        ctx.keep(draft, "QueueName", res.first("QueueName").line, ("queue", queue), ARC_BACKENDS)  # type: ignore[union-attr]
    _rtes(res, draft, ctx)
    for node in [*res.children, *slots.children]:
        if node.tag not in (*_MAPPED_RESOURCES, "NumberOfSlots"):
            ctx.ignore(node.tag, node.line)


def _draft(activity: Node, ctx: Context) -> Draft:
    draft = Draft(name="", command="")
    _staging(activity, draft, ctx)
    ours = _application(activity, draft, ctx)
    _resources(activity, draft, ctx, ours)
    ident = activity.first("ActivityIdentification") or Node("ActivityIdentification", activity.line)
    raw = ident.value("Name") or ""
    if ours and re.fullmatch(r"cops-[0-9a-f]{12}", raw):  # `<name> in <image>` says the name
        raw = re.sub(r" in \S+$", "", ident.value("Description") or "")
    draft.name = job_name(raw or ctx.stem, ctx, "Name", ident.line)
    for node in ident.children:
        if node.tag != "Name" and not (ours and node.tag == "Description"):
            ctx.ignore(node.tag, node.line)
    for node in activity.children:
        if node.tag not in ("ActivityIdentification", "Application", "Resources", "DataStaging"):
            ctx.ignore(node.tag, node.line)
    return draft


def read(ctx: Context) -> list[Group]:
    root = parse_xml(ctx.text, ctx)
    activities = root.all("ActivityDescription") if root.tag == "ActivityDescriptions" else [root]
    if root.tag not in ("ActivityDescription", "ActivityDescriptions") or not activities:
        raise ctx.error(f"<{root.tag}> is not an ADL ActivityDescription", line=root.line)
    drafts = [_draft(a, ctx) for a in activities]
    return [Group(drafts, [{} for _ in drafts], line=activities[0].line)]
