"""``cops-grid validate-site``: probes here (local), campaigns over sites (run, status, report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from computeops_grid.cli import output
from computeops_grid.config import load_config
from computeops_grid.logic.session import Session
from computeops_grid.validation import history, runner
from computeops_grid.validation.campaign import Campaign, Image, Site, load_campaign
from computeops_grid.validation.local import LOCAL_SITE, run_local
from computeops_grid.validation.report_html import render_html
from computeops_grid.validation.results import SiteResult, State

app = typer.Typer(
    help="Validate sites: run the probes here (local) or on every site of a campaign (run, status, report).",
    no_args_is_help=True,
)
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
CAMPAIGN = typer.Argument(..., help="Campaign file (campaign.yaml).", show_default=False)
STYLE = {"OK": "green", "WARNING": "yellow", "CRITICAL": "red", "UNKNOWN": "magenta"}
VERDICT_STYLE = {"certified": "green", "degraded": "yellow", "failed": "red"}


def _probe_table(result: SiteResult) -> Table:
    table = Table(title=f"{result.site} ({result.host}): {result.verdict.value}")
    for column in ("probe", "state", "summary"):
        table.add_column(column)
    for probe in result.probes:
        state = probe.state.name
        table.add_row(probe.name, f"[{STYLE[state]}]{state}[/]", Text(probe.summary))
    return table


def _local_campaign(images: list[str]) -> Campaign:
    refs = images
    if not refs:
        default = load_config().images / "registry.hub.docker.com" / "library" / "busybox:latest"
        refs = ["docker://busybox:latest"] if default.is_dir() else []
    return Campaign(name="local", sites=[LOCAL_SITE], images=[Image(ref=r) for r in refs])


@app.command()
def local(
    campaign_file: Optional[Path] = typer.Option(None, "--campaign", "-c", help="Take thresholds from it."),
    site_name: Optional[str] = typer.Option(None, "--site", help="Use this campaign site's settings."),
    image: list[str] = typer.Option([], "--image", help="Image to run (repeatable; default busybox)."),
    json_out: bool = JSON,
) -> None:
    """Run every probe on this machine; exit with the worst probe's Nagios code (0/1/2/3)."""
    campaign = load_campaign(campaign_file) if campaign_file else _local_campaign(image)
    site: Site = campaign.site(site_name) if site_name else LOCAL_SITE
    if image and campaign_file:
        campaign = campaign.model_copy(update={"images": [Image(ref=r) for r in image]})
    if site.image_root is None and load_config().images.is_dir():
        site = site.model_copy(update={"image_root": str(load_config().images)})
    result = run_local(campaign, site)
    if json_out:
        output.print_json(result.as_dict())
    else:
        output.out.print(_probe_table(result))
    raise typer.Exit(result.worst().value if result.worst() != State.OK else 0)


@app.command()
def run(
    campaign_file: Path = CAMPAIGN,
    new: bool = typer.Option(False, "--new", help="Start a new run even if the current one is unfinished."),
    parallel: int = typer.Option(
        runner.SITE_WORKERS,
        "--parallel",
        min=1,
        max=64,
        metavar="<n>",
        help="Sites submitted at once: an unreachable CE costs its retries (seconds) without "
        "holding up the others.",
    ),
    json_out: bool = JSON,
) -> None:
    """Submit the validation bundle to every site (a rerun resumes: live jobs are never resubmitted)."""
    campaign = load_campaign(campaign_file)
    with Session.open() as session:
        cur = runner.run_campaign(session, campaign, new=new, parallel=parallel)
    output.info(f"campaign {campaign.name} run {cur.run_id}: {len(cur.jobs)} site job(s)")
    if output.want_json(json_out):
        output.print_json(
            {
                s.name: {"job": cur.jobs.get(s.name, ""), "refused": cur.refused.get(s.name, "")}
                for s in campaign.sites
            }
        )
        return
    for site in campaign.sites:
        if site.name in cur.jobs:
            output.out.print(f"{site.name}\t{cur.jobs[site.name]}")
        elif site.name in cur.refused:
            output.out.print(f"{site.name}\trefused: {cur.refused[site.name]}", markup=False)


@app.command()
def status(campaign_file: Path = CAMPAIGN, json_out: bool = JSON) -> None:
    """Per site: the validation job's state (queued, running, done), with a progress bar."""
    campaign = load_campaign(campaign_file)
    with Session.open() as session:
        sites = runner.site_states(session, campaign)
    if json_out:
        output.print_json({p.site: {"state": p.state, "job": p.job_id, "note": p.note} for p in sites})
        return
    table = Table(title=f"campaign {campaign.name}")
    for column in ("site", "state", "job", "note"):
        table.add_column(column)
    for prog in sites:
        style = output.STATE_STYLE.get(prog.state, "red" if prog.state == "refused" else "white")
        table.add_row(prog.site, f"[{style}]{prog.state}[/]", prog.job_id, Text(prog.note))
    output.out.print(table)
    done = sum(1 for prog in sites if prog.done)
    with output.progress_bar("sites done", len(sites)) as bar:
        bar.update(bar.task_ids[0], completed=done)
    output.info(f"{done}/{len(sites)} sites done")


@app.command()
def report(
    campaign_file: Path = CAMPAIGN,
    out: Path = typer.Option(Path("validation-report"), "--out", "-o", help="Folder for report.json/html."),
    json_out: bool = JSON,
) -> None:
    """Verdict per site (certified/degraded/failed/unreachable) as JSON and static HTML, with changes."""
    campaign = load_campaign(campaign_file)
    with Session.open() as session:
        cur, results = runner.collect(session, campaign)
        folder = runner.campaign_dir(session, campaign.name)
    before = history.previous_results(folder, cur.run_id)
    history.save_results(folder, cur.run_id, results)
    changed = history.changes(before, results)
    out.mkdir(parents=True, exist_ok=True)
    data = {"campaign": campaign.name, "run_id": cur.run_id, "sites": [r.as_dict() for r in results],
            "changes": [str(c) for c in changed]}  # fmt: skip
    (out / "report.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    (out / "report.html").write_text(
        render_html(campaign.name, cur.run_id, results, changed), encoding="utf-8"
    )
    if json_out:
        output.print_json(data)
        return
    table = Table(title=f"campaign {campaign.name} run {cur.run_id}")
    for column in ("site", "verdict", "worst probe", "note"):
        table.add_column(column)
    for res in results:
        worst = next((p for p in res.probes if p.state == res.worst()), None)
        note = res.message or (f"{worst.name}: {worst.summary}" if worst and worst.state != State.OK else "")
        style = VERDICT_STYLE.get(res.verdict.value, "white")
        table.add_row(res.site, f"[{style}]{res.verdict.value}[/]", worst.name if worst else "-", Text(note))
    output.out.print(table)
    for change in changed:
        output.info(f"changed: {change}")
    output.info(f"report written to {out / 'report.html'}")
