"""Provenance commands: ``show`` (what ran for a job) and ``export`` (an RO-Crate of jobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from computeops_grid.api.client import Client
from computeops_grid.cli import output

JSON = typer.Option(False, "--json", help="Print JSON (the default when stdout is not a terminal).")


def show(
    job_id: str = typer.Argument(..., help="Job id or unique prefix."),
    json_out: bool = JSON,
) -> None:
    """Show what actually ran for a job: the image and its digest, the runtime (and why the
    others were passed over), the node, start and end, CPU time, memory, exit code or signal."""
    record = Client().show(job_id)
    if output.want_json(json_out):
        output.print_json(record)
        return
    output.out.print(_table(record))


def _table(record: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"job {record['id']} ({record['name']}, {record['state']})")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    image, runtime, node = record["image"], record["runtime"], record["node"] or {}
    if not record["report_available"]:
        table.add_row("report", "not back yet: the job has not ended, or its backend returned none")
    rows = [
        ("image", image["ran"] or image["requested"]),
        ("digest", f"{image['digest'] or '-'} ({image['digest_source'] or 'unknown'})"),
        ("runtime", " ".join(str(p) for p in (runtime["name"], runtime["version"], runtime["mode"]) if p)),
        ("why", runtime["why"]),
        *((f"  {name}", why) for name, why in sorted(runtime["refused"].items())),
        ("node", node.get("hostname")),
        ("os / kernel", " / ".join(str(node[k]) for k in ("os", "kernel") if node.get(k))),
        ("cpu", node.get("cpu_model")),
        ("gpus", ", ".join(node.get("gpus") or []) or None),
        ("command", " ".join(str(c) for c in record["command"])),
        ("started / ended", f"{record['started_at'] or '-'} / {record['ended_at'] or '-'}"),
        (
            "wall / cpu",
            f"{record['wall_s']} s / {record['cpu_user_s']} s user, {record['cpu_system_s']} s sys",
        ),
        ("max memory", f"{record['max_rss_kib']} KiB" if record["max_rss_kib"] is not None else None),
        ("exit", f"{record['exit_code']}" + (f" (signal {record['signal']})" if record["signal"] else "")),
        ("wrapper", record["wrapper_version"]),
    ]
    for name, value in rows:
        if value:
            table.add_row(name, escape(str(value)))
    return table


def export(
    ids: list[str] = typer.Argument(..., help="Job ids or unique prefixes (ended jobs)."),
    out_dir: Path = typer.Option(..., "-o", "--output", help="Directory for the crate (new or empty)."),
) -> None:
    """Write a Workflow Run RO-Crate (Process Run Crate profile) of ended jobs: the job
    description, the image with its digest, the runtime and the node, the command, start and
    end, the exit status, and the output files with their sha256 (needs the `crate` extra)."""
    path = Client().export(ids, out_dir)
    output.out.print(str(path), markup=False)


def register(app: typer.Typer) -> None:
    app.command()(show)
    app.command()(export)
