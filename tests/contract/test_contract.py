"""The backend contract, written once and run over every backend that runs here.

submit -> wait -> outputs; the payload's exit code; cancel; lookup after a crash;
the native description. Library level (logic + store), real backends.
"""

from __future__ import annotations

import time
from pathlib import Path

from computeops_grid.jobs.state import JobState
from computeops_grid.logic import follow, submit
from computeops_grid.logic.session import Session
from tests.conftest import EXAMPLES


def _job(tmp_path: Path, script: str, outputs: str = "[]") -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(
        f"name: contract\nimage: docker://busybox:latest\ncommand: sh\narguments: ['-c', '{script}']\n"
        f"outputs: {outputs}\nresources: {{walltime: 10, memory: 256MiB}}\n"
    )
    return path


def test_submit_wait_and_fetch_outputs(contract_backend: str, tmp_path: Path) -> None:
    with Session.open() as session:
        records = submit.records_from_files([EXAMPLES / "hello.yaml"], session, None)
        assert records[0].backend == contract_backend
        report = submit.submit_records(session, records)
        assert report.ok and report.submitted == [records[0].id]
        assert session.store.get(records[0].id).native_id  # set once the backend accepted it
        done = follow.wait(session, report.submitted, timeout=300)
        assert done[0].state == JobState.COMPLETED and done[0].exit_code == 0
        assert "Hello from Linux in a container" in follow.logs(session, done[0].id)
        files = follow.outputs(session, done[0].id, tmp_path / "out")
        assert (tmp_path / "out" / "result.txt") in files
        assert (tmp_path / "out" / "result.txt").read_text() == "done\n"
        states = [h.to_state for h in session.store.history(done[0].id)]
        assert states[:2] == [JobState.NEW, JobState.SUBMITTING] and states[-1] == JobState.COMPLETED


def test_payload_exit_code_comes_back(contract_backend: str, tmp_path: Path) -> None:
    with Session.open() as session:
        records = submit.records_from_files([_job(tmp_path, "echo oops >&2; exit 42")], session, None)
        report = submit.submit_records(session, records)
        done = follow.wait(session, report.submitted, timeout=300)
        assert (done[0].state, done[0].exit_code) == (JobState.FAILED, 42)
        assert "oops" in follow.logs(session, done[0].id)


def test_cancel_running_job(contract_backend: str, tmp_path: Path) -> None:
    with Session.open() as session:
        records = submit.records_from_files([_job(tmp_path, "sleep 300")], session, None)
        job_id = submit.submit_records(session, records).submitted[0]
        deadline = time.time() + 120
        while follow.refresh(session, [job_id])[0].state != JobState.RUNNING and time.time() < deadline:
            time.sleep(0.2)
        follow.cancel(session, [job_id])
        assert session.store.get(job_id).state == JobState.CANCELLED
        time.sleep(1)
        assert follow.refresh(session, [job_id])[0].state == JobState.CANCELLED


def test_lookup_finds_submitted_jobs_and_only_those(contract_backend: str, tmp_path: Path) -> None:
    with Session.open() as session:
        sent, unsent = submit.records_from_files([EXAMPLES / "hello.yaml"] * 2, session, None)
        report = submit.submit_records(session, [sent])
        backend = session.backend(contract_backend)
        found = backend.lookup([session.store.get(report.submitted[0]), unsent])
        hit = found[sent.id]
        assert hit is not None and hit.native_id == session.store.get(sent.id).native_id
        assert found[unsent.id] is None
        follow.wait(session, report.submitted, timeout=300)


def test_describe_is_the_native_description(contract_backend: str) -> None:
    with Session.open() as session:
        records = submit.records_from_files([EXAMPLES / "hello.yaml"], session, None)
        text = submit.describe(session, records)
        assert "docker://busybox:latest" in text
        assert session.store.summaries() == []  # describing stores nothing
