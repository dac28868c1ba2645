"""The backend contract, written once and run over every backend that runs here.

Submit, bulk status, the payload's exit code, what ran (the wrapper's report, back with the job
before any ``get``), declared outputs through ``cops-grid get``,
cancel of a running job and of one that already finished (through ``cops-grid cancel``),
lookup after a crash, the native description. Wherever the backend has a say, the test
asks the backend with its own tools as well (tests/contract/probes.py: ``squeue``/``sacct``,
A-REX REST, the DiracX client, ``docker``, the process table), so a logic layer that records
what it wishes cannot pass.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from computeops_grid import Client, worker
from computeops_grid.backends.base import Capability
from computeops_grid.backends.kubernetes import manifest as km
from computeops_grid.backends.registry import backend_class
from computeops_grid.images.default import PUBLIC
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.logic import follow, submit
from computeops_grid.logic.session import Session
from tests.conftest import EXAMPLES, Cli
from tests.contract.conftest import Target
from tests.contract.probes import MARK, SwarmProbe, marker, processes_with, wait_state, wait_until

pytestmark = [pytest.mark.service, pytest.mark.slow]
RUN_S = 300  # at most this long for a short job to end (A-REX goes through its job loop and Slurm)


def job_file(tmp_path: Path, script: str, **extra: Any) -> Path:
    """A busybox job running ``sh -c script``, marked with a unique value in its environment."""
    spec = {
        "name": "contract", "image": "docker://busybox:latest", "command": "sh",
        "arguments": ["-c", script], "environment": {MARK: f"cops-contract-{uuid.uuid4().hex}"},
        "resources": {"walltime": "00:10:00", "memory": "256MiB"}, **extra,
    }  # fmt: skip
    path = tmp_path / f"job-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def submitted(session: Session, target: Target, path: Path) -> list[JobRecord]:
    """Submit the jobs of ``path`` to the target's backend; its pilot starts them where needed."""
    records = submit.records_from_files([path], session, None)
    report = submit.submit_records(session, records)
    assert report.ok and len(report.submitted) == len(records), (report.failed, report.retryable)
    jobs = session.store.get_many(report.submitted)
    assert all(j.backend == target.backend and j.native_id for j in jobs)
    target.start(jobs)
    return jobs


def listed(cli: Cli, job_id: str) -> dict[str, Any]:
    """The job as the store has it, through ``cops-grid list --json``."""
    rows = cli("list", "--json").json()
    assert isinstance(rows, list)
    (row,) = [r for r in rows if r["id"] == job_id]
    return dict(row)


def test_submit_and_get_declared_outputs(target: Target, cli: Cli, tmp_path: Path) -> None:
    if Capability.OUTPUTS not in backend_class(target.backend).capabilities:
        return _get_says_the_backend_cannot(target, cli, tmp_path)
    target.needs_live()
    with Session.open() as session:
        (job,) = submitted(session, target, EXAMPLES / "hello.yaml")
        (done,) = follow.wait(session, [job.id], poll=target.poll, timeout=RUN_S)
        assert (done.state, done.exit_code) == (JobState.COMPLETED, 0), done.message
        # the refresh that saw it end stored the report (`show` would ask again: not yet)
        assert session.store.provenance(job.id) is not None, "the report did not come back with the job"
    _what_ran_came_back_without_get(target, job.id)
    got = cli("get", job.id, "-o", str(tmp_path / "out"), "--json")
    assert got.code == 0, got.stderr
    assert str(tmp_path / "out" / "result.txt") in got.json()  # type: ignore[operator]
    assert (tmp_path / "out" / "result.txt").read_text() == "done\n"
    return None


def _what_ran_came_back_without_get(target: Target, job_id: str) -> None:
    """The wrapper's report (Swarm: the engine's) is in the store before any ``get``, as
    ``Client.show`` (``cops-grid show --json``) and ``Client.jobs`` (``list --json``) give it:
    the image's digest (its ``.flat/`` name; Swarm: the engine's image id), the runtime, the
    node, the exit code."""
    client = Client()
    ran = client.show(job_id)
    assert ran["report_available"], ran
    if target.backend == "swarm":
        assert isinstance(target.probe, SwarmProbe)
        ref = ran["image"]["engine_image"]["ref"]
        engine_id = target.probe.docker("image", "inspect", ref, "--format", "{{.Id}}").stdout.strip()
        assert (ran["image"]["digest"], ran["runtime"]["name"]) == (engine_id, "docker-swarm")
    else:
        assert ran["image"]["digest"] == "sha256:" + (image_root_of(target) / PUBLIC).resolve().name
        assert ran["image"]["digest_source"] == "flat-directory"
        assert ran["runtime"]["name"] in worker.load_pilot().RUNTIMES
    assert ran["node"]["hostname"] == socket.gethostname()  # every backend here runs jobs on this host
    assert ran["exit_code"] == 0
    (row,) = client.jobs(image_digest=ran["image"]["digest"])  # what `list --json` prints
    assert (row["id"], row["image_digest"], row["runtime"], row["node"]) == (
        job_id, ran["image"]["digest"], ran["runtime"]["name"], ran["node"]["hostname"],
    )  # fmt: skip


def image_root_of(target: Target) -> Path:
    """The image repository the target's backend runs from (its own setting, else the global one)."""
    config = yaml.safe_load((Path(os.environ["COPS_GRID_HOME"]) / "config.yaml").read_text())
    return Path(config["backends"][target.backend].get("image_root") or config["image_root"])


def _get_says_the_backend_cannot(target: Target, cli: Cli, tmp_path: Path) -> None:
    """``get`` on a backend without the outputs capability: a usage error, the backend never asked."""
    cli("submit", str(EXAMPLES / "hello.yaml"))  # stored whatever the backend answers
    rows = cli("list", "--json").json()
    assert isinstance(rows, list) and len(rows) == 1
    result = cli("get", rows[0]["id"], "-o", str(tmp_path / "out"))
    assert result.code == 2, result.stderr
    assert f"backend {target.backend} cannot return output files" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_bulk_status_answers_for_every_job_in_one_call(target: Target, tmp_path: Path) -> None:
    target.needs_live()
    path = job_file(tmp_path, "exit ${code}", name="bulk-${code}", parameters={"code": [0, 1, 3]})
    with Session.open() as session:
        jobs = submitted(session, target, path)
        backend = session.backend(target.backend)
        answers = {}

        def all_final() -> bool:
            answers.update(backend.status(jobs))  # one call for the three jobs
            return len(answers) == 3 and all(a.state.final for a in answers.values())

        wait_until("one status call says every job of the bulk ended", all_final, RUN_S, target.poll)
    got = {int(j.params["code"]): (answers[j.id].state, answers[j.id].exit_code) for j in jobs}
    assert got == {0: (JobState.COMPLETED, 0), 1: (JobState.FAILED, 1), 3: (JobState.FAILED, 3)}


def test_payload_exit_code_42_comes_back_unchanged(
    target: Target, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = job_file(tmp_path, "echo oops >&2; exit 42")
    if not target.live:  # what runs of Kubernetes here: the Job's pod template in podman kube play
        return _exit_code_through_kube_play(path, request)
    with Session.open() as session:
        (job,) = submitted(session, target, path)
        (done,) = follow.wait(session, [job.id], poll=target.poll, timeout=RUN_S)
        assert (done.state, done.exit_code) == (JobState.FAILED, 42), done.message
        report = session.store.provenance(done.id)  # a failed job's report comes back as well
        assert report is not None and report["exit_code"] == 42, report
        assert "oops" in follow.logs(session, done.id)
    return None


def _exit_code_through_kube_play(path: Path, request: pytest.FixtureRequest) -> None:
    kube_play = request.getfixturevalue("kube_play")
    with Session.open() as session:
        records = submit.records_from_files([path], session, None)
        (doc,) = yaml.safe_load_all(submit.describe(session, records))
    result = kube_play.play(km.pod_of(doc, expand=True))
    assert (result.exit_code, result.state) == (42, "exited")


def test_cancel_of_a_running_job_stops_it(target: Target, cli: Cli, tmp_path: Path) -> None:
    target.needs_live()
    assert target.probe is not None
    with Session.open() as session:
        (job,) = submitted(session, target, job_file(tmp_path, "sleep 300"))
    wait_state(target.probe, job, target.probe.RUNNING, RUN_S, target.poll)  # the backend's own word
    wait_until("the payload's processes run", lambda: bool(processes_with(marker(job))), 60)
    result = cli("cancel", job.id, "--json", "--confirm-wait", str(target.confirm_wait))
    (answer,) = json.loads(result.stdout)
    if target.confirm_wait:
        assert result.code == 0, result.stderr
        assert (answer["outcome"], answer["state"]) == ("cancelled", "cancelled")
    else:  # the backend took the request; cops-grid did not wait for it to say it is done
        assert result.code == 9, result.stderr
        assert answer["outcome"] == "unconfirmed"
        assert answer["state"] in ("queued", "running")
        assert answer["message"] == follow.UNCONFIRMED
    wait_state(target.probe, job, target.probe.KILLED, 120, target.poll)
    wait_until("no process of the payload is left", lambda: not processes_with(marker(job)), 60)
    if not target.confirm_wait:
        assert cli("status", job.id, "--json").code == 0  # the backend now says it
    assert listed(cli, job.id)["state"] == "cancelled"


def test_cancel_of_a_finished_job_keeps_how_it_ended(target: Target, cli: Cli, tmp_path: Path) -> None:
    target.needs_live()
    assert target.probe is not None
    with Session.open() as session:
        (job,) = submitted(session, target, job_file(tmp_path, "exit 0"))
    wait_state(target.probe, job, target.probe.FINISHED, RUN_S, target.poll)
    assert listed(cli, job.id)["state"] == "queued"  # cops-grid has not looked since the submit
    result = cli("cancel", job.id)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == f"{job.id} completed: already finished, exit code 0; nothing to cancel"
    row = listed(cli, job.id)
    assert (row["state"], row["exit_code"]) == ("completed", 0)
    assert row["image_digest"] and row["runtime"] and row["node"], row  # the cancel saw it end: report back
    assert target.probe.state(job) in target.probe.FINISHED  # the backend was not asked to kill it


def test_lookup_finds_submitted_jobs_and_only_those(target: Target) -> None:
    target.needs_live()
    with Session.open() as session:
        sent, unsent = submit.records_from_files([EXAMPLES / "hello.yaml"] * 2, session, None)
        report = submit.submit_records(session, [sent])
        target.start(session.store.get_many(report.submitted))
        backend = session.backend(target.backend)
        found = backend.lookup([session.store.get(report.submitted[0]), unsent])
        hit = found[sent.id]
        assert hit is not None and hit.native_id == session.store.get(sent.id).native_id
        assert found[unsent.id] is None
        follow.wait(session, report.submitted, poll=target.poll, timeout=RUN_S)


def test_describe_is_the_native_description(target: Target) -> None:
    with Session.open() as session:
        records = submit.records_from_files([EXAMPLES / "hello.yaml"], session, None)
        text = submit.describe(session, records)
        assert "busybox" in text or f"hello.{records[0].id}" in text  # DiracX: the image is in b64 args
        assert session.store.summaries() == []  # describing stores nothing
