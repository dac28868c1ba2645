"""``cops-grid diracx run-jobs``: the pilot side of DiracX jobs, for a VM or HPC login node."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from computeops_grid import extras
from computeops_grid.cli.output import info, print_json, want_json
from computeops_grid.errors import ConfigError, UsageError

app = typer.Typer(help="Work with a DiracX server from the pilot side.", add_completion=False)


@app.command("run-jobs")
def run_jobs(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    job_ids: Annotated[
        Optional[list[int]], typer.Argument(help="DIRAC job ids (default: pick waiting jobs)")
    ] = None,
    url: Annotated[Optional[str], typer.Option(help="DiracX URL (default $DIRACX_URL)")] = None,
    credentials: Annotated[
        Optional[Path],
        typer.Option(help="the job owner's token file (default $DIRACX_CREDENTIALS_PATH)"),
    ] = None,
    workdir: Annotated[Path, typer.Option(help="where job directories are created")] = Path("diracx-jobs"),
    max_jobs: Annotated[int, typer.Option("--max", min=1, help="jobs to pick when no id is given")] = 1,
    name_contains: Annotated[str, typer.Option(help="only pick jobs whose JobName contains this")] = "",
    python: Annotated[str, typer.Option(help="interpreter for .py executables")] = sys.executable,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Run waiting DiracX jobs here: fetch JDL and input sandbox, run, upload outputs, report."""
    with extras.needed("`cops-grid diracx run-jobs`", "diracx"):  # --help works without the extra
        from computeops_grid.backends.dirac.agent import run_job, waiting_jobs  # noqa: PLC0415
        from computeops_grid.backends.dirac.diracx_client import (  # noqa: PLC0415
            DiracXClient,
            check_credentials,
            default_credentials_path,
        )

    server = url or os.environ.get("DIRACX_URL")
    if not server:
        raise ConfigError("no DiracX server given", hint="pass --url or set DIRACX_URL")
    creds = credentials or default_credentials_path()
    check_credentials(creds)
    results = []
    with DiracXClient(server, creds) as client:
        ids = list(job_ids or []) or waiting_jobs(client, limit=max_jobs, name_contains=name_contains)
        if not ids:
            raise UsageError("no waiting job to run", hint="submit one, or check --name-contains")
        for job_id in ids:
            res = run_job(client, job_id, workdir.resolve(), python=python)
            results.append(res)
            if not want_json(as_json):
                info(f"job {res.job_id}: {res.status} (exit code {res.exit_code}) {res.message}")
    if want_json(as_json):
        print_json([r.__dict__ for r in results])
    if any(r.status != "Done" for r in results):
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover - `python -m computeops_grid.cli.diracx`
    app()
