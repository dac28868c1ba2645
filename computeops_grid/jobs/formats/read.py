"""One native description into validated job specs and the notes of what was not carried.

A job whose description names no container image takes ``--image`` (``ReadOptions.image``);
``host:`` there runs it uncontained on the node, because the user said so (the wrapper's
explicit host mode). Without either, the file is refused: cops-grid never picks an image, and
never runs a payload uncontained on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from computeops_grid.errors import JobFileError
from computeops_grid.jobs.formats import adl, condor, jdl, xrsl
from computeops_grid.jobs.formats.common import Context, Draft, Group, Note, ReadOptions
from computeops_grid.jobs.formats.fold import fold
from computeops_grid.jobs.model import JobSpec

READERS: dict[str, Callable[[Context], list[Group]]] = {
    "jdl": jdl.read,
    "xrsl": xrsl.read,
    "adl": adl.read,
    "sub": condor.read,
}
_UNFOLDED = (
    "its {} jobs differ in more than names, arguments, environment and files (image, command or "
    "resources): read as separate jobs, not one parametric job"
)
IMAGE_HINT = (
    "give one with --image (docker://repo:tag, a .sif, an unpacked image directory), "
    "or --image host: to run the job uncontained on the node"
)


def _walltime(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _data(draft: Draft, group: Group, ctx: Context) -> dict[str, Any]:
    image = draft.image or ctx.options.image
    if not image:
        raise ctx.error("the description names no container image", line=group.line, hint=IMAGE_HINT)
    if draft.image and ctx.options.image and draft.image != ctx.options.image:
        ctx.note("--image", None, f"not used: the description names its own image {draft.image}")
    resources: dict[str, Any] = {}
    if draft.cores:
        resources["cores"] = draft.cores
    if draft.memory:
        resources["memory"] = f"{draft.memory}B"
    if draft.walltime:
        resources["walltime"] = _walltime(draft.walltime)
    if draft.gpus:
        resources["gpus"] = draft.gpus
    return {
        "name": draft.name, "image": image, "command": draft.command, "arguments": draft.arguments,
        "environment": draft.environment, "inputs": list(dict.fromkeys(draft.inputs)),
        "outputs": list(dict.fromkeys(draft.outputs)), "resources": resources,
        "runtimes": draft.runtimes, "backend_options": draft.options,
    }  # fmt: skip


def _validate(data: dict[str, Any], draft: Draft, group: Group, ctx: Context) -> JobSpec:
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        key = loc[1] if loc[:1] == ["resources"] and len(loc) > 1 else loc[0] if loc else ""
        attribute, line = draft.origin.get(key, (key, group.line))
        reason = str(err["msg"]).removeprefix("Value error, ")
        raise JobFileError(
            f"{reason} (read as {'.'.join(loc)})", path=ctx.path, line=line, field=attribute
        ) from None


def read_native(path: str, text: str, fmt: str, options: ReadOptions) -> tuple[list[JobSpec], list[Note]]:
    """The jobs of one JDL, xRSL, ADL or HTCondor submit file, and what they leave out."""
    ctx = Context(path, text, options)
    groups = READERS[fmt](ctx)
    if len(groups) > 1 and all(g.ours for g in groups):  # what cops-grid wrote as one bulk, in parts
        groups = [
            Group([d for g in groups for d in g.drafts], [h for g in groups for h in g.hints], groups[0].line)
        ]
    specs = []
    for group in groups:
        datas = [_data(d, group, ctx) for d in group.drafts]
        folded = fold(datas, group)
        if len(datas) > 1 and len(folded) > 1 and not group.ours and any(group.hints):
            ctx.note("queue" if fmt == "sub" else "Parameters", group.line, _UNFOLDED.format(len(datas)))
        specs += [_validate(data, group.drafts[0], group, ctx) for data in folded]
    if not specs:
        raise ctx.error("contains no job")
    return specs, ctx.notes
