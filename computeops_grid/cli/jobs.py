"""Job commands: submit, status, list, logs, get, cancel, resubmit, sync, backends."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from computeops_grid.api.client import Client
from computeops_grid.api.records import CancelInfo, JobInfo, failed, final
from computeops_grid.api.results import Cancellation, Submission
from computeops_grid.cli import convert as convert_cli
from computeops_grid.cli import output
from computeops_grid.errors import JobsFailed
from computeops_grid.jobs.state import JobState
from computeops_grid.logic import follow
from computeops_grid.logic.backends import PROBE_SECONDS

JSON = typer.Option(False, "--json", help="Print JSON (the default when stdout is not a terminal).")


def _report_submit(report: Submission) -> None:
    for job_id, why in report.failed.items():
        output.info(f"[red]refused[/] {job_id}: {why}")
    for job_id, why in report.retryable.items():
        output.info(
            f"[yellow]not submitted (kept, retry with `cops-grid resubmit {job_id}`)[/] {job_id}: {why}"
        )
    if report.unknown:
        output.info(f"[yellow]{len(report.unknown)} job(s) in an unknown state: run `cops-grid sync`[/]")


def _wait_and_show(client: Client, ids: list[str], show_output: bool) -> None:
    with output.progress_bar("waiting", len(ids)) as bar:
        task = bar.task_ids[0]

        def tick(records: list[JobInfo]) -> None:
            bar.update(task, completed=sum(final(r) for r in records))

        records = client.wait(ids, progress=tick)
    if show_output:
        for rec in records:
            if len(records) > 1:
                output.info(f"[bold]== {rec['id']} {rec['name']} ({rec['state']})[/]")
            output.raw(client.logs(rec["id"]))
    bad = [r for r in records if failed(r)]
    if bad:
        for rec in bad:
            output.info(f"[red]{rec['state']}[/] {rec['id']} {rec['name']}: {rec['message']}")
        raise JobsFailed(f"{len(bad)} of {len(records)} job(s) did not complete")


def submit(
    files: list[Path] = typer.Argument(
        ..., help="Job files: YAML, or JDL, xRSL, ADL, HTCondor submit files.", show_default=False
    ),
    backend: Optional[str] = typer.Option(
        None, "--backend", "-b", help="Run on this backend (overrides the files)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the backend-native description; submit nothing."
    ),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait until the jobs end and print their output."),
    *,
    image: Optional[str] = typer.Option(None, "--image", help=convert_cli.IMAGE_HELP),
    json_out: bool = JSON,
) -> None:
    """Submit the jobs of FILES (parametric jobs expand to one job per value).

    A JDL, xRSL, ADL or HTCondor submit file is read into the same job model (format told by
    its content); what it holds that the job does not carry is listed on stderr, with its line
    (`cops-grid convert FILE` shows the job as YAML).
    """
    with Client() as client:
        prepared = client.load(files, backend=backend, image=image)
        for note in prepared.notes:
            output.err.print(f"note: {note}", markup=False)
        if dry_run:
            output.out.print(client.describe(prepared), end="", markup=False)
            for line in client.storage_plan(prepared):  # stderr: stdout stays the native description
                output.err.print(f"storage: {line}", markup=False, soft_wrap=True)
            return
        with output.progress_bar("submitting", len(prepared)) as bar:
            report = client.submit(
                prepared, progress=lambda done, _: bar.update(bar.task_ids[0], completed=done), check=False
            )
        _report_submit(report)
        if json_out:
            output.print_json(report.jobs)
        else:
            for rec_id in report.submitted:
                output.out.print(rec_id)
        error = report.error()
        if error is not None:
            raise error
        if wait:
            _wait_and_show(client, report.submitted, show_output=len(report.submitted) <= 10)


def status(
    ids: list[str] = typer.Argument(None, help="Job ids or unique prefixes (default: all active jobs)."),
    json_out: bool = JSON,
) -> None:
    """Refresh and show the state of jobs from their backends."""
    records = Client().status(ids or None)
    if output.want_json(json_out):
        output.print_json(records)
    else:
        output.jobs_table(records)


def list_jobs(
    state: list[JobState] = typer.Option([], "--state", "-s", help="Only jobs in this state (repeatable)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Only jobs of this backend."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many jobs."),
    image_digest: Optional[str] = typer.Option(
        None, "--image-digest", help="Only jobs that ran this image (sha256:<hex>, or a prefix; see `show`)."
    ),
    json_out: bool = JSON,
) -> None:
    """List jobs from the local store (no backend is contacted; see `status`)."""
    rows = Client().jobs(states=state, backend=backend, limit=limit, image_digest=image_digest)
    if output.want_json(json_out):
        output.print_json(rows)
    else:
        output.jobs_table(rows)


def logs(job_id: str = typer.Argument(..., help="Job id or unique prefix.")) -> None:
    """Print a job's stdout and stderr."""
    output.raw(Client().logs(job_id))


def get(
    job_id: str = typer.Argument(..., help="Job id or unique prefix."),
    out_dir: Optional[Path] = typer.Option(None, "-o", "--output", help="Directory (default: ./<job id>)."),
    json_out: bool = JSON,
) -> None:
    """Fetch a job's declared output files, stdout, stderr and wrapper report."""
    with Client() as client:
        files = client.outputs(job_id, out_dir)
        if json_out:
            output.print_json([str(f) for f in files])
        else:
            for path in files:
                output.out.print(str(path))


def cancel(
    ids: list[str] = typer.Argument(..., help="Job ids or unique prefixes."),
    confirm_wait: float = typer.Option(
        follow.CONFIRM_TIMEOUT, "--confirm-wait", min=0, help="Seconds to wait for the backend to confirm."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON: each job with its `outcome`."),
) -> None:
    """Cancel jobs: on their backend once submitted, in the store before that.

    A job is recorded cancelled only once its backend confirms it stopped; a job that had
    already ended keeps its state and exit code and is reported as already finished.
    Exit status: 0 every job is cancelled or had already ended; 9 the backend took the
    request but had not confirmed it within --confirm-wait (the job keeps its state,
    `cops-grid status` shows when it ends); 74 the backend refused to stop a job; 75, 76
    or 77 the backend was not reached (the jobs' states are unchanged).
    """
    report = Client().cancel(ids, confirm_wait=confirm_wait, check=False)
    if json_out:
        output.print_json(report.jobs)
    else:
        for rec in report.jobs:
            output.out.print(_cancel_line(rec, report), markup=False)
    unreached = report.of("error")
    if unreached:
        output.info(f"{len(unreached)} job(s) not cancelled: backend not reached, state unchanged")
    error = report.error()  # the backend's own error first, then refusals, then waits
    if error is not None:
        raise error


def _cancel_line(rec: CancelInfo, report: Cancellation) -> str:
    job_id, state, outcome = rec["id"], rec["state"], rec["outcome"]
    if outcome == "cancelled":
        return f"{job_id} cancelled"
    if outcome == "ended":
        code = "" if rec["exit_code"] is None else f", exit code {rec['exit_code']}"
        return f"{job_id} {state}: already finished{code}; nothing to cancel"
    if outcome == "unconfirmed":
        return f"{job_id} {state}: {follow.UNCONFIRMED}"
    if outcome == "refused":
        return f"{job_id} {state}: not cancelled: {report.reasons[job_id]}"
    return f"{job_id} {state}: not cancelled, state unchanged: {report.reasons[job_id]}"


def resubmit(
    ids: list[str] = typer.Argument(..., help="Job ids or unique prefixes."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait until the jobs end."),
    same_image: bool = typer.Option(
        False,
        "--same-image",
        help="Run the image each job actually ran, pinned by its digest (never another).",
    ),
) -> None:
    """Submit again: jobs kept as `new` after an error, or copies of finished jobs."""
    with Client() as client:
        report = client.resubmit(ids, check=False, same_image=same_image)
        _report_submit(report)
        for rec_id in report.submitted:
            output.out.print(rec_id)
        if wait and report.submitted:
            _wait_and_show(client, report.submitted, show_output=len(report.submitted) <= 10)


def sync(json_out: bool = JSON) -> None:
    """Repair after a crash: find jobs stuck `submitting` on their backend (never
    submitting twice), submit jobs left `new`, refresh active jobs."""
    client = Client()
    with output.progress_bar("submitting", len(client.jobs(states=[JobState.NEW]))) as bar:
        report = client.sync(progress=lambda done, _: bar.update(bar.task_ids[0], completed=done))
    summary = report.counts()
    if json_out:
        output.print_json(summary)
    else:
        output.out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()))
    _report_submit(report.submit)


def backends(
    json_out: bool = JSON,
    timeout: float = typer.Option(PROBE_SECONDS, "--timeout", help="Seconds each probe may take."),
) -> None:
    """Show every resource (named under `resources:`, and each backend type with its
    defaults): its type, whether it answers, its credential and capabilities. All are
    probed at once, each for at most --timeout seconds."""
    rows = Client().backends(timeout=timeout)
    if output.want_json(json_out):
        output.print_json(rows)
        return
    table = Table(header_style="bold")
    for column in ("RESOURCE", "TYPE", "REACHABLE", "CREDENTIAL", "CAPABILITIES", "DETAIL"):
        table.add_column(column, overflow="fold")
    for row in rows:
        ok = "[green]yes[/]" if row["reachable"] else "[red]no[/]"
        detail = escape("; ".join([row["detail"], *row["warnings"]]))  # plain text: [extra] stays
        credential = row["credential"] or "-"
        table.add_row(row["name"], row["type"], ok, credential, ", ".join(row["capabilities"]), detail)
    output.out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(submit)
    app.command()(status)
    app.command("list")(list_jobs)
    app.command()(logs)
    app.command()(get)
    app.command()(cancel)
    app.command()(resubmit)
    app.command()(sync)
    app.command()(backends)
