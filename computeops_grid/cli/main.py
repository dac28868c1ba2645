"""``cops-grid``: the entry point, global options, sub-apps and the one error handler."""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
import types

import typer

from computeops_grid import __version__, extras
from computeops_grid.cli import convert as convert_cli
from computeops_grid.cli import jobs as jobs_cli
from computeops_grid.cli import provenance as provenance_cli
from computeops_grid.cli.output import err, print_error
from computeops_grid.errors import CopsError, ExitCode, exit_codes_epilog


def _click_modules() -> list[types.ModuleType]:
    """Exception modules of click: recent typer vendors its own copy, older typer uses click."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


_CLICK_MODULES = _click_modules()


def _both(name: str) -> tuple[type[BaseException], ...]:
    found = {getattr(mod, name, None) for mod in _CLICK_MODULES}
    return tuple(cls for cls in found if isinstance(cls, type))


_EXIT: tuple[type[BaseException], ...] = (*_both("Exit"), typer.Exit)
_ABORT: tuple[type[BaseException], ...] = (*_both("Abort"), KeyboardInterrupt)
_CLICK: tuple[type[BaseException], ...] = _both("ClickException")
_USAGE: tuple[type[BaseException], ...] = _both("UsageError")

EXIT_CODES = exit_codes_epilog()

app = typer.Typer(
    name="cops-grid",
    help="Run a containerized application anywhere: laptop, batch cluster, grid, cloud.\n\n"
    "Write one job file (name, image, command: see the README), then `cops-grid submit job.yaml --wait`; "
    "follow jobs with `status`, `list`, `logs`, `get`, `cancel`, `resubmit`, `sync`. JDL, xRSL, ADL "
    "and HTCondor submit files are read too (`cops-grid convert` shows how).",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

# sub-command groups, each a module with ``app``; mounted when present
SUBAPPS = {
    "pilot": "computeops_grid.cli.pilot",
    "diracx": "computeops_grid.cli.diracx",
    "image": "computeops_grid.cli.image",
    "proxy": "computeops_grid.cli.proxy",
    "bench": "computeops_grid.cli.bench",
    "validate-site": "computeops_grid.cli.validate",
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cops-grid {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Log details and show tracebacks."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what is being done."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


jobs_cli.register(app)
convert_cli.register(app)
provenance_cli.register(app)
CORE_COMMANDS = frozenset(
    {"submit", "status", "list", "logs", "get", "cancel", "resubmit", "sync", "backends", "convert"}
    | {"show", "export"}
)


def _wanted_subapps(argv: list[str]) -> list[str]:
    """Import only the sub-app a command line needs (all of them for help): start-up stays fast."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in CORE_COMMANDS:
        return []
    if first in SUBAPPS:
        return [first]
    return list(SUBAPPS)


def mount_subapps(argv: list[str]) -> None:
    for name in _wanted_subapps(argv):
        module = SUBAPPS[name]
        try:
            sub = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        app.add_typer(sub.app, name=name)


def _feature(argv: list[str]) -> str:
    """The command a user typed, for messages: `cops-grid image convert`, `cops-grid submit`."""
    words = [a for a in argv if not a.startswith("-")]
    wanted = words[:2] if words and words[0] in SUBAPPS else words[:1]
    return f"`{' '.join(['cops-grid', *wanted])}`"


def run() -> None:
    """Console-script entry: no traceback reaches a user unless --debug."""
    debug = "--debug" in sys.argv
    try:
        mount_subapps(sys.argv[1:])
        result = app(standalone_mode=False)
    except CopsError as exc:
        if debug:
            traceback.print_exc()
        print_error(exc)
        sys.exit(exc.exit_code)
    except _EXIT as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except _ABORT:
        err.print("Interrupted.")
        sys.exit(ExitCode.INTERRUPTED)
    except _CLICK as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(ExitCode.USAGE if isinstance(exc, _USAGE) else getattr(exc, "exit_code", 1))
    except Exception as exc:
        if debug:
            traceback.print_exc()
        absent = extras.missing(exc, _feature(sys.argv[1:])) if isinstance(exc, ModuleNotFoundError) else None
        if absent is not None:  # an optional dependency, not a bug: name the extra that brings it
            print_error(absent)
            sys.exit(absent.exit_code)
        err.print(f"[bold red]Error:[/] unexpected {type(exc).__name__}: {exc}")
        err.print("[bold yellow]Hint:[/] rerun with --debug for the traceback and report it")
        sys.exit(ExitCode.UNEXPECTED)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    run()
