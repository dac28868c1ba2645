"""``cops-grid pilot ARGS...``: the pilot wrapper (``worker/cops_pilot.py``) run here.

Every argument goes to the wrapper's own ``main`` unchanged (``cops-grid pilot --help`` shows
the wrapper's help), and the command exits with the wrapper's exit code.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import typer
from typer.core import TyperGroup

from computeops_grid import worker

_ARGS = "cops_grid.pilot.args"


def load_wrapper() -> ModuleType:
    """Import the shipped wrapper file as a module (it is a script, not part of the package)."""
    return worker.load_pilot()


class _PassThrough(TyperGroup):
    """A group that keeps every argument (options included) for the wrapper's own parser."""

    # typer vendors click (typer._click): typer.Context is the public name of its Context subclass
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        ctx.meta[_ARGS] = list(args)
        return []

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        code = load_wrapper().main(ctx.meta.get(_ARGS, []))
        raise typer.Exit(int(code))


app = typer.Typer(
    cls=_PassThrough,
    help="Run a payload in a container the way a grid job does (the pilot wrapper; "
    "`cops-grid pilot --help` for its options, `cops-grid pilot --list-runtimes` for this machine).",
    add_completion=False,
)
