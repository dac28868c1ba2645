"""Campaign runs through the normal backends and the job store.

One validation job per site: the bundle (``cops-validation.pyz``) shipped as the job's
input, run on the worker node, returning ``validation-result.json`` as its output. The
current run is kept in ``<home>/validation/<campaign>/current.json``; ``run`` again resumes
it (submits only sites without a live job) until every job is final, then starts a new run.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.errors import CopsError
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.logic import follow
from computeops_grid.logic.session import Session
from computeops_grid.logic.submit import new_id, resubmit, submit_records
from computeops_grid.validation.bundle import BUNDLE_NAME, RESULT_NAME, build_bundle
from computeops_grid.validation.campaign import Campaign, Site
from computeops_grid.validation.plan import build_plan
from computeops_grid.validation.results import SiteResult, Verdict, load_result

log = logging.getLogger(__name__)
HOST_IMAGE = "host:"  # the wrapper runs the bundle on the node itself (see shared notes)
FINAL = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class CampaignRun:
    campaign: str
    run_id: str
    started: float
    jobs: dict[str, str] = field(default_factory=dict)  # site -> cops-grid job id

    def as_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "run_id": self.run_id, "started": self.started, "jobs": self.jobs}


def campaign_dir(session: Session, campaign: str) -> Path:
    path = session.config.home / "validation" / campaign
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_run(session: Session, campaign: str) -> CampaignRun | None:
    path = campaign_dir(session, campaign) / "current.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return CampaignRun(data["campaign"], data["run_id"], float(data["started"]), dict(data["jobs"]))


def save_run(session: Session, run: CampaignRun) -> None:
    path = campaign_dir(session, run.campaign) / "current.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(run.as_dict(), indent=1), encoding="utf-8")
    tmp.replace(path)


def bundle_spec(campaign: Campaign, site: Site, bundle: Path, run_id: str) -> JobSpec:
    options = {**site.options, **({"queue": site.queue} if site.queue else {})}
    return JobSpec(
        name=f"validate-{campaign.name}-{site.name}"[:100],
        image=HOST_IMAGE,
        command="python3",
        arguments=[BUNDLE_NAME, "--site", site.name, "--out", RESULT_NAME],
        inputs=[str(bundle)],
        outputs=[RESULT_NAME],
        resources={"walltime": max(1, campaign.walltime // 60), "cores": 1},
        backend=site.backend,
        backend_options=options,
        tags=["validation", f"campaign={campaign.name}", f"site={site.name}", f"run={run_id}"],
    )


def _live(session: Session, run: CampaignRun) -> dict[str, JobRecord]:
    ids = list(run.jobs.values())
    records = {r.id: r for r in follow.refresh(session, ids)} if ids else {}
    return {site: records[job_id] for site, job_id in run.jobs.items() if job_id in records}


def run_campaign(session: Session, campaign: Campaign, *, new: bool = False) -> CampaignRun:
    """Submit the bundle to every site that has no live or finished job in the current run."""
    run = load_run(session, campaign.name)
    if run is not None and not new:
        live = _live(session, run)
        if live and all(rec.state in FINAL for rec in live.values()) and len(live) == len(campaign.sites):
            run = None  # the previous run is complete: start a new one
    if run is None or new:
        run = CampaignRun(campaign.name, time.strftime("%Y%m%dT%H%M%S") + "-" + new_id()[:4], time.time())
    live = _live(session, run)
    todo = [s for s in campaign.sites if s.name not in live or live[s.name].state == JobState.NEW]
    retry = [live[s.name].id for s in todo if s.name in live]
    if retry:
        resubmit(session, retry)
    records = []
    store_dir = campaign_dir(session, campaign.name) / "bundles" / run.run_id
    store_dir.mkdir(parents=True, exist_ok=True)
    for site in (s for s in todo if s.name not in live):
        bundle = build_bundle(build_plan(campaign, site), store_dir / f"{site.name}-{BUNDLE_NAME}")
        staged = store_dir / site.name / BUNDLE_NAME
        staged.parent.mkdir(exist_ok=True)
        bundle.replace(staged)
        spec = bundle_spec(campaign, site, staged, run.run_id)
        record = JobRecord(id=new_id(), spec=spec, backend=site.backend, source=str(store_dir / "campaign"))
        records.append(record)
        run.jobs[site.name] = record.id
    save_run(session, run)  # ids are known before any backend call
    for record in records:  # one site's refusal (unknown backend, credentials) must not stop the others
        try:
            submit_records(session, [record])
        except CopsError as exc:
            log.warning("site job %s (%s) not submitted: %s", record.id, record.backend, exc.message)
    return run


def site_states(session: Session, campaign: Campaign) -> dict[str, JobRecord | None]:
    run = load_run(session, campaign.name)
    live = _live(session, run) if run else {}
    return {site.name: live.get(site.name) for site in campaign.sites}


def collect(session: Session, campaign: Campaign) -> tuple[CampaignRun, list[SiteResult]]:
    """Verdicts of the current run: fetched results, or unreachable / pending with the reason."""
    run = load_run(session, campaign.name)
    if run is None:
        raise CopsError(
            f"campaign {campaign.name} has not been run yet",
            hint=f"cops-grid validate-site run <campaign.yaml> (campaign {campaign.name})",
        )
    live = _live(session, run)
    results = [_site_result(session, site.name, live.get(site.name)) for site in campaign.sites]
    return run, results


def _site_result(session: Session, site: str, rec: JobRecord | None) -> SiteResult:
    if rec is None:
        return SiteResult(site, Verdict.UNREACHABLE, message="no validation job was submitted")
    if rec.state not in FINAL:
        return SiteResult(site, Verdict.PENDING, message=f"job {rec.id} is {rec.state.value}", job_id=rec.id)
    with tempfile.TemporaryDirectory(prefix="cops-validation-") as tmp:
        try:
            follow.outputs(session, rec.id, Path(tmp))
        except CopsError as exc:
            log.info("no outputs for %s: %s", rec.id, exc.message)
        found = list(Path(tmp).rglob(RESULT_NAME))
        if not found:
            why = rec.message or f"exit code {rec.exit_code}"
            message = f"job {rec.state.value}: {why}"
            return SiteResult(site, Verdict.UNREACHABLE, message=message, job_id=rec.id)
        return load_result(found[0], site, rec.id)
