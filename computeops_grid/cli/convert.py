"""``cops-grid convert``: a job file from one format into another (YAML, JDL, xRSL, ADL, submit file)."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from computeops_grid.cli import output

if TYPE_CHECKING:
    from computeops_grid.jobs.model import JobSpec

IMAGE_HELP = (
    "Container image for descriptions that name none (JDL never does; xRSL/ADL through ENV/SINGULARITY "
    "and friends, submit files through container_image or +SingularityImage do): docker://repo:tag, a "
    ".sif or an unpacked image directory. `--image host:` runs them uncontained on the node, because "
    "you say so (the wrapper's host mode); without either such a file is refused (exit 3)."
)


class Target(str, enum.Enum):
    yaml = "yaml"
    jdl = "jdl"
    xrsl = "xrsl"
    adl = "adl"
    sub = "sub"


def _rebased(specs: list[JobSpec], source: Path, dest: Path) -> list[JobSpec]:
    """Relative inputs, relative to ``dest``'s directory instead of ``source``'s."""
    src, out = source.resolve().parent, dest.resolve().parent
    if src == out:
        return specs

    def move(item: str) -> str:
        return item if item.startswith("/") else os.path.relpath(src / item, out)

    return [s.model_copy(update={"inputs": [move(i) for i in s.inputs]}) for s in specs]


def _target_type(to: Target, backend: str | None) -> str | None:
    from computeops_grid.jobs.formats.write import TARGETS  # noqa: PLC0415 - keeps start-up light

    if to is not Target.yaml or backend is None:
        return TARGETS[to.value]
    from computeops_grid.config import load_config  # noqa: PLC0415

    return load_config().resource(backend).type


def convert(
    file: Path = typer.Argument(
        ..., help="A job file: YAML, JDL, xRSL, ADL or HTCondor submit file.", show_default=False
    ),
    to: Target = typer.Option(Target.yaml, "--to", "-t", help="The format to write."),
    image: Optional[str] = typer.Option(None, "--image", help=IMAGE_HELP),
    backend: Optional[str] = typer.Option(
        None, "--backend", "-b", help="With --to yaml: keep only the site options this backend understands."
    ),
    out: Optional[Path] = typer.Option(None, "-o", "--output", help="Write here (default: stdout)."),
) -> None:
    """Convert FILE to another format, listing on stderr what the target cannot carry.

    The format of FILE is told by its content (its extension only breaks ties). Site-specific
    attributes (a JDL Site, an xRSL queue) stay backend options where the target's backend
    understands them; every other attribute the job model has no place for is named with its
    line. --to jdl/xrsl/adl/sub writes what `cops-grid submit --dry-run` would send to a DIRAC,
    ARC or HTCondor-CE backend (the job runs through the wrapper cops_pilot.py, shipped with
    it); converting that back gives the same job. Input paths stay relative to FILE's directory
    (or are rewritten for the directory of --output).
    """
    text, notes = render(file, to, image=image, backend=backend, out=out)
    for note in notes:
        output.err.print(f"note: {note}", markup=False)
    if out is None:
        output.raw(text)
    else:
        out.write_text(text, encoding="utf-8")


def render(
    file: Path, to: Target, *, image: str | None = None, backend: str | None = None, out: Path | None = None
) -> tuple[str, list[str]]:
    """The text of FILE in format ``to`` and the notes of what is not carried."""
    from computeops_grid.jobs.formats.common import ReadOptions  # noqa: PLC0415 - keeps start-up light
    from computeops_grid.jobs.formats.write import to_native, to_yaml  # noqa: PLC0415
    from computeops_grid.jobs.loader import load_file  # noqa: PLC0415

    loaded = load_file(file, ReadOptions(image=image, target=_target_type(to, backend)))
    notes = [n.text(str(file)) for n in sorted(loaded.notes, key=lambda n: n.line or 0)]
    specs = _rebased(loaded.specs, file, out) if out is not None else loaded.specs
    if to is Target.yaml:
        header = [f"converted by cops-grid from {file.name} ({loaded.format})"]
        header += ["", "not carried as written:", *(f"  {n}" for n in notes)] if notes else []
        return to_yaml(specs, header if loaded.format != "yaml" else ()), notes
    text, more = to_native(specs, to.value)
    return text, notes + [f"{file}: {n}" for n in more]


def register(app: typer.Typer) -> None:
    app.command()(convert)
