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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.errors import BackendError, CopsError
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.jobs.store import JobStore
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
SITE_WORKERS = 8  # sites submitted at once (benchmarks/campaign_bench.py)


@dataclass
class CampaignRun:
    """The current run of a campaign: the job of each site, or why its job was refused.

    A refused site's job was never stored (the backend is unknown, its settings or
    credentials are wrong...), so the reason is kept here; a rerun does not resubmit it
    unless the refusal was transient (``retry``: backend unavailable).
    """

    campaign: str
    run_id: str
    started: float
    jobs: dict[str, str] = field(default_factory=dict)  # site -> cops-grid job id
    refused: dict[str, str] = field(default_factory=dict)  # site -> why no job was stored
    retry: list[str] = field(default_factory=list)  # refused sites tried again by the next `run`

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign, "run_id": self.run_id, "started": self.started, "jobs": self.jobs,
            "refused": self.refused, "retry": self.retry,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignRun:
        return cls(
            str(data["campaign"]), str(data["run_id"]), float(data["started"]), dict(data["jobs"]),
            dict(data.get("refused", {})), list(data.get("retry", [])),
        )  # fmt: skip


def campaign_dir(session: Session, campaign: str) -> Path:
    path = session.config.home / "validation" / campaign
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_run(session: Session, campaign: str) -> CampaignRun | None:
    path = campaign_dir(session, campaign) / "current.json"
    if not path.is_file():
        return None
    try:
        return CampaignRun.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CopsError(
            f"campaign state {path} is unreadable: {exc}",
            hint="start a new run with `cops-grid validate-site run --new <campaign.yaml>`",
        ) from None


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
        environment=dict(site.environment),
        inputs=[str(bundle)],
        outputs=[RESULT_NAME],
        resources={"walltime": max(1, campaign.walltime // 60), "cores": 1},
        backend=campaign.resource_of(site),
        backend_options=options,
        tags=["validation", f"campaign={campaign.name}", f"site={site.name}", f"run={run_id}"],
    )


def _live(session: Session, run: CampaignRun) -> dict[str, JobRecord]:
    ids = list(run.jobs.values())
    records = {r.id: r for r in follow.refresh(session, ids)} if ids else {}
    return {site: records[job_id] for site, job_id in run.jobs.items() if job_id in records}


def _complete(run: CampaignRun, live: dict[str, JobRecord], campaign: Campaign) -> bool:
    """Every site has a final job or a refusal that is not to be retried."""
    for site in campaign.sites:
        rec = live.get(site.name)
        if rec is not None and rec.state in FINAL:
            continue
        if rec is None and site.name in run.refused and site.name not in run.retry:
            continue
        return False
    return True


def run_campaign(
    session: Session, campaign: Campaign, *, new: bool = False, parallel: int = SITE_WORKERS
) -> CampaignRun:
    """Submit the bundle to every site that has no live or finished job in the current run.

    A site whose backend refuses the job before it is stored keeps its reason in the run
    (verdict ``unreachable``) and is not submitted again by a rerun of the same run.
    """
    campaign.register(session.config)
    run = None if new else load_run(session, campaign.name)
    if run is not None and _complete(run, _live(session, run), campaign):
        run = None  # the previous run is complete: start a new one
    if run is None:
        run = CampaignRun(campaign.name, time.strftime("%Y%m%dT%H%M%S") + "-" + new_id()[:4], time.time())
    live = _live(session, run)
    todo = [s for s in campaign.sites if s.name not in live or live[s.name].state == JobState.NEW]
    todo = [s for s in todo if s.name not in run.refused or s.name in run.retry]
    retry = [live[s.name].id for s in todo if s.name in live]
    if retry:
        resubmit(session, retry)
    records = {}
    store_dir = campaign_dir(session, campaign.name) / "bundles" / run.run_id
    store_dir.mkdir(parents=True, exist_ok=True)
    for site in (s for s in todo if s.name not in live):
        spec = bundle_spec(campaign, site, _stage_bundle(campaign, site, store_dir), run.run_id)
        resource = campaign.resource_of(site)
        record = JobRecord(id=new_id(), spec=spec, backend=resource, source=str(store_dir / "campaign"))
        records[site.name] = record
        run.jobs[site.name] = record.id
        run.refused.pop(site.name, None)
        run.retry = [name for name in run.retry if name != site.name]
    save_run(session, run)  # ids are known before any backend call
    for site_name, record, exc in _submit_sites(session, records, parallel):
        if exc is not None:  # one site's refusal does not stop the others
            _note_refusal(session, run, site_name, record, exc)
    save_run(session, run)
    return run


def _stage_bundle(campaign: Campaign, site: Site, store_dir: Path) -> Path:
    bundle = build_bundle(build_plan(campaign, site), store_dir / f"{site.name}-{BUNDLE_NAME}")
    staged = store_dir / site.name / BUNDLE_NAME
    staged.parent.mkdir(exist_ok=True)
    bundle.replace(staged)
    return staged


def _submit_sites(
    session: Session, records: dict[str, JobRecord], parallel: int
) -> Iterator[tuple[str, JobRecord, CopsError | None]]:
    """Submit every site's job, ``parallel`` sites at a time: a dead CE costs its connection
    attempts and retries (seconds) without holding up the sites behind it. Each submission has
    its own session (SQLite connections stay in their thread); results come in ``records``' order.
    """

    def one(item: tuple[str, JobRecord]) -> tuple[str, JobRecord, CopsError | None]:
        with Session(session.config, JobStore(session.config.store_path)) as own:
            try:
                submit_records(own, [item[1]])
            except CopsError as exc:
                return item[0], item[1], exc
        return item[0], item[1], None

    if records:
        with ThreadPoolExecutor(min(parallel, len(records)), thread_name_prefix="cops-site") as pool:
            yield from pool.map(one, records.items())


def _note_refusal(session: Session, run: CampaignRun, site: str, record: JobRecord, exc: CopsError) -> None:
    """A site's submit failed: a stored job is the store's to retry; a refusal before the job
    was stored is kept in ``run`` (retried by the next run when it was transient)."""
    if session.store.get_many([record.id]):
        log.warning("site %s: job %s: %s", site, record.id, exc.message)
        return  # stored: the job store tracks it (new jobs are retried by the next run)
    log.warning("site %s (backend %s) refused the validation job: %s", site, record.backend, exc.message)
    del run.jobs[site]
    run.refused[site] = exc.message + (f" ({exc.hint})" if exc.hint else "")
    if isinstance(exc, BackendError) and exc.transient:
        run.retry.append(site)


@dataclass(frozen=True)
class SiteProgress:
    """Where one site stands in the current run (``validate-site status``)."""

    site: str
    state: str  # the job's state, "refused" (no job stored) or "not submitted"
    job_id: str = ""
    note: str = ""  # the job's last message, or why the backend refused it

    @property
    def done(self) -> bool:
        return self.state == "refused" or self.state in {s.value for s in FINAL}


def site_states(session: Session, campaign: Campaign) -> list[SiteProgress]:
    campaign.register(session.config)
    run = load_run(session, campaign.name)
    live = _live(session, run) if run else {}
    found = []
    for site in campaign.sites:
        rec = live.get(site.name)
        if rec is not None:
            found.append(SiteProgress(site.name, rec.state.value, rec.id, rec.message))
        elif run is not None and site.name in run.refused:
            found.append(SiteProgress(site.name, "refused", note=run.refused[site.name]))
        else:
            found.append(SiteProgress(site.name, "not submitted"))
    return found


def collect(session: Session, campaign: Campaign) -> tuple[CampaignRun, list[SiteResult]]:
    """Verdicts of the current run: fetched results, or unreachable / pending with the reason."""
    campaign.register(session.config)
    run = load_run(session, campaign.name)
    if run is None:
        raise CopsError(
            f"campaign {campaign.name} has not been run yet",
            hint=f"cops-grid validate-site run <campaign.yaml> (campaign {campaign.name})",
        )
    live = _live(session, run)
    results = []
    for site in campaign.sites:
        if site.name in run.refused and site.name not in live:
            why = f"{campaign.resource_of(site)} refused the job: {run.refused[site.name]}"
            results.append(SiteResult(site.name, Verdict.UNREACHABLE, message=why))
        else:
            results.append(_site_result(session, site.name, live.get(site.name)))
    return run, results


def _site_result(session: Session, site: str, rec: JobRecord | None) -> SiteResult:
    if rec is None:
        return SiteResult(site, Verdict.UNREACHABLE, message="no validation job was submitted")
    if rec.state == JobState.NEW and rec.message:  # not sent: its backend could not be reached
        message = f"job {rec.id} not sent: {rec.message} (the next `validate-site run` retries it)"
        return SiteResult(site, Verdict.UNREACHABLE, message=message, job_id=rec.id)
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
