"""Job commands: submit, status, list, logs, get, cancel, resubmit, sync, backends."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from computeops_grid.cli import convert as convert_cli
from computeops_grid.cli import output
from computeops_grid.errors import (
    BackendRejected,
    BackendUnavailable,
    CancelUnconfirmed,
    DeliveryUncertain,
    JobsFailed,
    ToolMissing,
)
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.logic import follow
from computeops_grid.logic import submit as submit_logic
from computeops_grid.logic.backends import PROBE_SECONDS, backend_overview
from computeops_grid.logic.session import Session
from computeops_grid.logic.sync import sync as sync_logic

JSON = typer.Option(False, "--json", help="Print JSON (the default when stdout is not a terminal).")


def _report_submit(report: submit_logic.SubmitReport) -> None:
    for job_id, why in report.failed.items():
        output.info(f"[red]refused[/] {job_id}: {why}")
    for job_id, why in report.retryable.items():
        output.info(
            f"[yellow]not submitted (kept, retry with `cops-grid resubmit {job_id}`)[/] {job_id}: {why}"
        )
    if report.unknown:
        output.info(f"[yellow]{len(report.unknown)} job(s) in an unknown state: run `cops-grid sync`[/]")


def _wait_and_show(session: Session, ids: list[str], show_output: bool) -> None:
    with output.progress_bar("waiting", len(ids)) as bar:
        task = bar.task_ids[0]

        def tick(records: list[JobRecord]) -> None:
            bar.update(task, completed=sum(r.state.final for r in records))

        records = follow.wait(session, ids, progress=tick)
    if show_output:
        for rec in records:
            if len(records) > 1:
                output.info(f"[bold]== {rec.id} {rec.name} ({rec.state})[/]")
            output.raw(follow.logs(session, rec.id))
    bad = [r for r in records if r.state in (JobState.FAILED, JobState.CANCELLED)]
    if bad:
        for rec in bad:
            output.info(f"[red]{rec.state}[/] {rec.id} {rec.name}: {rec.message}")
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
    with Session.open() as session:
        notes: list[str] = []
        records = submit_logic.records_from_files(files, session, backend, image=image, notes=notes)
        for note in notes:
            output.err.print(f"note: {note}", markup=False)
        if dry_run:
            output.out.print(submit_logic.describe(session, records), end="", markup=False)
            return
        with output.progress_bar("submitting", len(records)) as bar:
            report = submit_logic.submit_records(session, records, lambda n: bar.advance(bar.task_ids[0], n))
        _report_submit(report)
        if json_out:
            output.print_json([output.job_dict(r) for r in session.store.get_many([r.id for r in records])])
        else:
            for rec_id in report.submitted:
                output.out.print(rec_id)
        if report.unknown:
            raise DeliveryUncertain(
                f"{len(report.unknown)} job(s) may have reached the backend, but no reply came back",
                hint="nothing is sent again blindly: `cops-grid sync` finds them on the backend "
                "(or submits those it does not find)",
            )
        if report.retryable:
            unsent = ToolMissing if report.tool_missing else BackendUnavailable
            raise unsent(
                f"{len(report.retryable)} job(s) were not sent: {next(iter(report.retryable.values()))}",
                hint="they are kept in the store: `cops-grid resubmit ID...` or `cops-grid sync`",
            )
        if report.failed and not report.submitted:
            raise BackendRejected(
                f"no job was accepted: {next(iter(report.failed.values()))}",
                hint="fix the job or the backend settings, then `cops-grid resubmit ID...`",
            )
        if wait:
            _wait_and_show(session, report.submitted, show_output=len(report.submitted) <= 10)


def status(
    ids: list[str] = typer.Argument(None, help="Job ids or unique prefixes (default: all active jobs)."),
    json_out: bool = JSON,
) -> None:
    """Refresh and show the state of jobs from their backends."""
    with Session.open() as session:
        records = follow.refresh(session, session.store.resolve(ids) if ids else None)
        if output.want_json(json_out):
            output.print_json([output.job_dict(r) for r in records])
        else:
            output.jobs_table(records)


def list_jobs(
    state: list[JobState] = typer.Option([], "--state", "-s", help="Only jobs in this state (repeatable)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Only jobs of this backend."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many jobs."),
    json_out: bool = JSON,
) -> None:
    """List jobs from the local store (no backend is contacted; see `status`)."""
    with Session.open() as session:
        rows = session.store.summaries(states=state, backend=backend, limit=limit)
        if output.want_json(json_out):
            output.print_json([output.job_dict(r) for r in rows])
        else:
            output.jobs_table(rows)


def logs(job_id: str = typer.Argument(..., help="Job id or unique prefix.")) -> None:
    """Print a job's stdout and stderr."""
    with Session.open() as session:
        output.raw(follow.logs(session, session.store.resolve([job_id])[0]))


def get(
    job_id: str = typer.Argument(..., help="Job id or unique prefix."),
    out_dir: Optional[Path] = typer.Option(None, "-o", "--output", help="Directory (default: ./<job id>)."),
    json_out: bool = JSON,
) -> None:
    """Fetch a job's declared output files, stdout, stderr and wrapper report."""
    with Session.open() as session:
        full = session.store.resolve([job_id])[0]
        files = follow.outputs(session, full, out_dir or Path(full))
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
    with Session.open() as session:
        report = follow.cancel(session, session.store.resolve(ids), confirm_timeout=confirm_wait)
    if json_out:
        output.print_json([{**output.job_dict(r), "outcome": report.outcome(r.id)} for r in report.records])
    else:
        for rec in report.records:
            output.out.print(_cancel_line(rec, report), markup=False)
    _cancel_exit(report)


def _cancel_line(rec: JobRecord, report: follow.CancelReport) -> str:
    outcome = report.outcome(rec.id)
    if outcome == "cancelled":
        return f"{rec.id} cancelled"
    if outcome == "ended":
        code = "" if rec.exit_code is None else f", exit code {rec.exit_code}"
        return f"{rec.id} {rec.state}: already finished{code}; nothing to cancel"
    if outcome == "unconfirmed":
        return f"{rec.id} {rec.state}: {follow.UNCONFIRMED}"
    if outcome == "refused":
        return f"{rec.id} {rec.state}: not cancelled: {report.refused[rec.id]}"
    return f"{rec.id} {rec.state}: not cancelled, state unchanged: {report.errors[rec.id].message}"


def _cancel_exit(report: follow.CancelReport) -> None:
    """The exit status of ``cancel``: the backend's own error first, then refusals, then waits."""
    if report.errors:
        output.info(f"{len(report.errors)} job(s) not cancelled: backend not reached, state unchanged")
        raise next(iter(report.errors.values()))
    if report.refused:
        job_id, why = next(iter(report.refused.items()))
        raise BackendRejected(
            f"{len(report.refused)} job(s) not cancelled ({job_id}: {why})",
            hint="`cops-grid status ID...` shows what the backend says about them",
        )
    if report.unconfirmed:
        raise CancelUnconfirmed(
            f"{len(report.unconfirmed)} job(s): {follow.UNCONFIRMED}",
            hint="`cops-grid status ID...` shows when they end; cancelling again is safe",
        )


def resubmit(
    ids: list[str] = typer.Argument(..., help="Job ids or unique prefixes."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait until the jobs end."),
) -> None:
    """Submit again: jobs kept as `new` after an error, or copies of finished jobs."""
    with Session.open() as session:
        report = submit_logic.resubmit(session, session.store.resolve(ids))
        _report_submit(report)
        for rec_id in report.submitted:
            output.out.print(rec_id)
        if wait and report.submitted:
            _wait_and_show(session, report.submitted, show_output=len(report.submitted) <= 10)


def sync(json_out: bool = JSON) -> None:
    """Repair after a crash: find jobs stuck `submitting` on their backend (never
    submitting twice), submit jobs left `new`, refresh active jobs."""
    with Session.open() as session:
        with output.progress_bar("submitting", len(session.store.ids(states=[JobState.NEW]))) as bar:
            report = sync_logic(session, lambda n: bar.advance(bar.task_ids[0], n))
        summary = {
            "found": len(report.found), "reset": len(report.reset),
            "still_unknown": len(report.still_unknown), "submitted": len(report.submit.submitted),
            "failed": len(report.submit.failed), "retryable": len(report.submit.retryable),
        }  # fmt: skip
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
    with Session.open() as session:
        rows = backend_overview(session, timeout=timeout)
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
