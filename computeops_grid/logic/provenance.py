"""Provenance: what actually ran for a job, kept in the store and shown by ``cops-grid show``.

The pilot wrapper writes it (``cops-report.json``: the image and its digest, the runtime, the
node, times, usage, exit code or signal). It comes back as soon as a refresh sees the job ended:

* a backend that returns files brings the report back through ``fetch_outputs``, asked for that
  one file (local, Slurm, ARC, HTCondor-CE, DIRAC: nothing else is copied);
* a backend whose jobs run without the wrapper (Swarm, Kubernetes) fills what its engine knows
  (:class:`~computeops_grid.backends.base.SupportsReports`).

A report that cannot be had now (the backend not reachable) is logged; ``show`` asks again.
The store keeps the report whole, sections this version does not know included.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from computeops_grid.backends.base import SupportsOutputs, SupportsReports
from computeops_grid.backends.common.payload import REPORT_NAME
from computeops_grid.errors import CopsError, UsageError
from computeops_grid.images.errors import ImageError
from computeops_grid.images.reference import parse_ref
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.jobs.store import Provenance
from computeops_grid.logic import submit as submit_logic
from computeops_grid.logic.session import Session, by_backend
from computeops_grid.logic.submit import Progress

log = logging.getLogger(__name__)
ENDED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
MAX_REPORT_BYTES = 1 << 20


def collect(session: Session, records: Sequence[JobRecord]) -> int:
    """Bring back and store the reports of the ended ``records`` that have none yet.

    Never raises for a backend that cannot give one: logged, and tried again by :func:`show`.
    Returns how many reports were stored."""
    todo = [r for r in records if r.state in ENDED and r.native_id and session.store.provenance(r.id) is None]
    stored = 0
    for name, jobs in by_backend(todo).items():
        try:
            reports = _reports(session, name, jobs)
        except (CopsError, OSError) as exc:
            log.warning("no report for %d job(s) on %s yet: %s", len(jobs), name, exc)
            continue
        session.store.set_provenances(_row(job_id, report) for job_id, report in reports.items())
        stored += len(reports)
    return stored


def collect_ended(session: Session, ids: Sequence[str]) -> None:
    """After a refresh: collect for the jobs ``ids`` a backend just reported ended (only the
    ones the store recorded as ended and that have no report yet are read again)."""
    if ids:
        collect(session, [r for r in session.store.get_many(list(ids)) if r.state.final])


def _row(job_id: str, report: dict[str, Any]) -> Provenance:
    """What the store keeps of one report: all of it, and the columns `list` shows and filters on."""
    node = _str(_section(report, "node").get("hostname")) or _str(report.get("hostname"))
    return (job_id, report, _str(report.get("image_digest")), _str(report.get("runtime")), node)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reports(session: Session, name: str, jobs: list[JobRecord]) -> dict[str, dict[str, Any]]:
    backend = session.backend(name)
    if isinstance(backend, SupportsReports):
        return backend.reports(jobs)
    if not isinstance(backend, SupportsOutputs):
        return {}
    found = {}
    for job in jobs:
        try:
            report = _fetch_report(backend, job)
        except (CopsError, OSError) as exc:  # this job's only: the others are still asked
            log.warning("no report for job %s yet: %s", job.id, getattr(exc, "message", exc))
            continue
        if report is not None:
            found[job.id] = report
    return found


def _fetch_report(backend: SupportsOutputs, job: JobRecord) -> dict[str, Any] | None:
    """The wrapper's report through the backend's own ``fetch_outputs``, asked for it alone."""
    fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(JobRecord) if f.init}
    only_report = JobRecord(**{**fields, "spec": job.spec.model_copy(update={"outputs": [REPORT_NAME]})})
    with tempfile.TemporaryDirectory(prefix="cops-report-") as tmp:
        backend.fetch_outputs(only_report, Path(tmp))
        path = Path(tmp) / REPORT_NAME
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_REPORT_BYTES:  # the wrapper's are a few KiB: not one it wrote
            log.warning("the report of job %s is larger than %d bytes: not kept", job.id, MAX_REPORT_BYTES)
            return None
        try:
            data = json.loads(path.read_text(errors="replace"))
        except json.JSONDecodeError as exc:
            log.warning("the report of job %s is not JSON: %s", job.id, exc)
            return None
    return data if isinstance(data, dict) else None


# -- what `show` prints --------------------------------------------------------------------


def show(session: Session, job_id: str) -> dict[str, Any]:
    """The provenance record of one job (asks for its report once more if it ended without one)."""
    rec = session.store.get(job_id)
    report = session.store.provenance(rec.id)
    if report is None and rec.state in ENDED:
        collect(session, [rec])
        report = session.store.provenance(rec.id)
    return build_record(rec, report)


def build_record(rec: JobRecord, report: dict[str, Any] | None) -> dict[str, Any]:
    """One job's provenance as plain data (also what the RO-Crate export reads)."""
    rep = report or {}
    usage, engine = _section(rep, "usage"), _section(rep, "engine_image")
    return {
        "id": rec.id,
        "name": rec.name,
        "backend": rec.backend,
        "state": rec.state.value,
        "native_id": rec.native_id,
        "parent_id": rec.parent_id,
        "job": rec.spec.model_dump(mode="json", exclude_none=True),
        "report_available": report is not None,
        "image": {
            "requested": rec.spec.image,
            "ran": rep.get("image"),
            "digest": rep.get("image_digest"),
            "digest_source": rep.get("image_digest_source"),
            "path": rep.get("image_path"),
            "engine_image": engine or None,
        },
        "runtime": {
            "name": rep.get("runtime"),
            "version": rep.get("runtime_version"),
            "mode": rep.get("mode"),
            "why": rep.get("why"),
            "refused": rep.get("refused") or {},
        },
        "node": rep.get("node") or ({"hostname": rep["hostname"]} if rep.get("hostname") else None),
        "wrapper_version": rep.get("wrapper_version") or rep.get("version"),
        "command": rep.get("command") or [rec.spec.command, *rec.spec.arguments],
        "started_at": _iso(rep.get("payload_started_at") or rep.get("started_at")),
        "ended_at": _iso(rep.get("payload_ended_at") or rep.get("ended_at")),
        "wall_s": usage.get("wall_s"),
        "cpu_user_s": usage.get("cpu_user_s"),
        "cpu_system_s": usage.get("cpu_system_s"),
        "max_rss_kib": usage.get("max_rss_kib"),
        "exit_code": rep.get("exit_code", rec.exit_code),
        "signal": rep.get("signal"),
        "wrapper_exit_reason": rep.get("wrapper_exit_reason"),
        "report": report,
    }


def _section(report: dict[str, Any], key: str) -> dict[str, Any]:
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def _iso(ts: object) -> str | None:
    if not isinstance(ts, (int, float)) or isinstance(ts, bool):
        return None
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).isoformat(timespec="milliseconds")


# -- exact reruns ----------------------------------------------------------------------------


def normalise_digest(text: str) -> str:
    """``sha256:<hex>``, ``<hex>`` or a prefix of either -> the ``sha256:...`` form the store keeps."""
    value = text.strip().lower()
    hexpart = value.removeprefix("sha256:")
    if not hexpart or any(c not in "0123456789abcdef" for c in hexpart) or len(hexpart) > 64:
        raise UsageError(
            f"--image-digest {text!r}: expected sha256:<hex> (or a prefix of it)",
            hint="`cops-grid show ID --json` prints a job's image digest",
        )
    return "sha256:" + hexpart


def pinned_spec(session: Session, rec: JobRecord) -> JobSpec:
    """The job's description with its image pinned to the digest it ran (``docker://repo:tag@sha256:...``):
    the wrapper runs that image or refuses (image not found, naming the digest)."""
    report = session.store.provenance(rec.id)
    if report is None:
        collect(session, [rec])
        report = session.store.provenance(rec.id)
    digest = _str((report or {}).get("image_digest"))
    if digest is None:
        raise UsageError(
            f"job {rec.id}: no image digest is known for it, so it cannot be rerun on the same image",
            hint="`cops-grid show` says what is known; only a job whose wrapper report came back "
            "with a docker:// image's digest can be pinned",
        )
    source = (report or {}).get("image_digest_source")
    if source != "flat-directory":
        raise UsageError(
            f"job {rec.id}: it ran {digest} ({source}), which the wrapper cannot look up by digest",
            hint="--same-image pins docker:// images run from an unpacked repository (.flat/<digest>); "
            "resubmit without it, or pin the image by hand in the job file",
        )
    try:
        if not rec.spec.image.startswith("docker://"):
            raise ImageError("not a docker:// name")
        ref = parse_ref(rec.spec.image)
    except ImageError:
        raise UsageError(
            f"job {rec.id}: --same-image pins docker:// images; {rec.spec.image} is a path",
            hint=f"it ran {digest}; rerun it without --same-image on a file you keep unchanged",
        ) from None
    pinned = replace(ref, digest=digest)
    return rec.spec.model_copy(update={"image": str(pinned)})


def rerun_same_image(
    session: Session, ids: Sequence[str], progress: Progress | None = None
) -> submit_logic.SubmitReport:
    """New jobs (``parent_id`` = the old one) on the image each job actually ran, by digest.

    Every job is checked before anything is stored: one that has not ended, or whose digest is
    not known, stops the whole call (nothing is submitted)."""
    copies = []
    for rec in session.store.get_many(ids):
        if not rec.state.final:
            raise UsageError(
                f"job {rec.id} is {rec.state}; --same-image reruns a job that ran",
                hint="wait for it to end, or resubmit without --same-image",
            )
        copies.append(
            JobRecord(
                id=submit_logic.new_id(), spec=pinned_spec(session, rec), backend=rec.backend,
                index=rec.index, parent_id=rec.id, source=rec.source, params=rec.params,
            )
        )  # fmt: skip
    return submit_logic.submit_records(session, copies, progress)
