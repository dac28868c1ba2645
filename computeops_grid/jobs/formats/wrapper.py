"""Descriptions cops-grid wrote itself: the pilot wrapper's command line, read back.

Every backend runs a payload as ``cops_pilot.py --image IMAGE ... -- COMMAND ARG...`` (see
:func:`computeops_grid.backends.common.payload.pilot_argv`), or through the launcher with the
arguments as one ``b64:`` word where the description cannot carry them. Reading that command
line back gives the job model's image, environment, runtimes, GPUs, command and arguments, so a
job converted to JDL, xRSL, ADL or a submit file converts back to the same job.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import PurePath

from computeops_grid.backends.common.payload import PILOT_FILE, REPORT_NAME
from computeops_grid.jobs.formats.common import Context, Draft
from computeops_grid.worker import DIRAC_LAUNCHER

OWN_FILES = frozenset({PILOT_FILE, DIRAC_LAUNCHER})
# the wrapper's own options that say where, not what: each backend sets them
_PLUMBING = frozenset({"--report", "--image-root", "--workdir"})
_SWITCHES = frozenset({"--gpu", "--require-container", "--allow-uncontained", "--dry-run", "-v", "--verbose"})


@dataclass
class WrapperCall:
    image: str = ""
    runtimes: list[str] = field(default_factory=list)
    gpu: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    command: str = ""
    arguments: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # wrapper options outside the job model


def is_wrapper(executable: str) -> bool:
    return PurePath(executable).name in OWN_FILES


def _decoded(args: list[str]) -> list[str] | None:
    if len(args) != 1 or not args[0].startswith("b64:"):
        return None
    try:
        argv = json.loads(base64.urlsafe_b64decode(args[0][4:].encode()))
    except (ValueError, binascii.Error):
        return None
    return [str(a) for a in argv] if isinstance(argv, list) else None


def parse(executable: str, args: list[str]) -> WrapperCall | None:
    """The job inside a wrapper command line (``None`` when it is not one, or is malformed)."""
    name = PurePath(executable).name
    if name == DIRAC_LAUNCHER:
        decoded = _decoded(args)
        if decoded is None:
            return None
        args = decoded
    elif name != PILOT_FILE:
        return None
    call, rest = WrapperCall(), list(args)
    while rest and rest[0] != "--":
        flag = rest.pop(0)
        if flag in _SWITCHES:
            call.gpu |= flag == "--gpu"
            call.unknown += [] if flag == "--gpu" else [flag]
            continue
        if not rest:
            return None
        value = rest.pop(0)
        if flag == "--image":
            call.image = value
        elif flag == "--runtime":
            call.runtimes = [r for r in value.split(",") if r]
        elif flag == "--env" and "=" in value:
            key, _, val = value.partition("=")
            call.environment[key] = val
        elif flag not in _PLUMBING:
            call.unknown += [flag, value]
    if len(rest) < 2 or not call.image:
        return None
    call.command, call.arguments = rest[1], rest[2:]
    return call


def own_outputs(names: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    """Declared outputs without the ones every cops-grid job has (report, stdout, stderr)."""
    own = {REPORT_NAME, *extra}
    return [n for n in names if n not in own]


def own_inputs(names: list[str]) -> list[str]:
    return [n for n in names if PurePath(n).name not in OWN_FILES]


def apply(call: WrapperCall, draft: Draft, ctx: Context, attribute: str, line: int | None) -> None:
    """The job inside the wrapper's command line, onto ``draft`` (GPUs counted by the caller)."""
    draft.image, draft.command, draft.arguments = call.image, call.command, call.arguments
    draft.environment.update(call.environment)
    draft.runtimes = call.runtimes
    draft.gpus = max(draft.gpus or 0, 1) if call.gpu else draft.gpus
    draft.inputs = own_inputs(draft.inputs)
    for option in call.unknown:
        ctx.ignore(attribute, line, f"wrapper option {option} is not part of the job model")
