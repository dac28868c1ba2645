"""Everything the CLI prints goes through here: errors, tables, JSON, progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from computeops_grid.api.records import JobInfo, job_info
from computeops_grid.errors import CopsError

out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

STATE_STYLE = {
    "new": "white", "submitting": "yellow", "queued": "cyan", "running": "blue",
    "completed": "green", "failed": "red", "cancelled": "magenta",
}  # fmt: skip


def want_json(flag: bool) -> bool:
    """JSON when asked for, or when stdout is not a terminal (scripts, pipes)."""
    return flag or not sys.stdout.isatty()


def print_json(data: Any) -> None:
    # indented for people; compact (C encoder, ~10x faster) for pipes and scripts
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, default=str) + "\n")


def raw(text: str) -> None:
    """Payload output, byte for byte as the job wrote it (no markup, no wrapping)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def print_error(exc: CopsError) -> None:
    # messages are plain text: `pip install 'computeops-grid[images]'` must keep its brackets
    err.print(f"[bold red]Error:[/] {escape(exc.message)}", markup=True, highlight=False)
    if exc.hint:
        err.print(f"[bold yellow]Hint:[/] {escape(exc.hint)}")


def info(message: str) -> None:
    err.print(message)


job_dict = job_info  # what `--json` prints is what the Python API returns: one serialisation


def jobs_table(jobs: Sequence[JobInfo], title: str | None = None) -> None:
    table = Table(title=title, header_style="bold")
    for column in ("ID", "NAME", "BACKEND", "STATE", "EXIT", "NATIVE ID", "UPDATED", "MESSAGE"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        style = STATE_STYLE.get(job["state"], "")
        table.add_row(
            job["id"], job["name"], job["backend"], f"[{style}]{job['state']}[/]",
            "" if job["exit_code"] is None else str(job["exit_code"]),
            job["native_id"] or "", job["updated"], job["message"],
        )  # fmt: skip
    out.print(table)


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Progress]:
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False, disable=not err.is_terminal,
    )  # fmt: skip
    with bar:
        bar.add_task(label, total=total)
        yield bar
