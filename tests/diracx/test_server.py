"""The DiracX backend against a real DiracX 0.7.0 server (tests/services/diracx.py).

DiracX has no matcher here, so submitted jobs wait; the tests play the pilot with the
real pilot-side helper (computeops_grid/diracx_pilot.py), which runs the real wrapper.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from pathlib import Path

import pytest
import zstandard

from computeops_grid.backends.common.sandbox import Archive, UnsafeSandbox, build_archive
from computeops_grid.backends.dirac.agent import run_job
from computeops_grid.backends.dirac.diracx import DiracXBackend
from computeops_grid.backends.dirac.diracx_client import DiracXClient
from computeops_grid.errors import CredentialError
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from tests.diracx.conftest import expired_copy

pytestmark = [pytest.mark.service, pytest.mark.slow]


def jobs(n: int, tag: str, bulk: str | None = None, **spec: object) -> list[JobRecord]:
    fields: dict[str, object] = {
        "name": tag, "image": "docker://busybox:latest", "command": "sh",
        "arguments": ["-c", "echo hello > out.txt; echo on-stdout"], "outputs": ["out.txt"],
    }  # fmt: skip
    fields.update(spec)
    stamp = time.time_ns() % 10**8
    return [
        JobRecord(
            id=f"{stamp:08x}{i:04x}", spec=JobSpec.model_validate(fields), backend="diracx",
            bulk_id=bulk, index=i, params={"i": str(i)} if bulk else {},
        )
        for i in range(n)
    ]  # fmt: skip


def accept(records: list[JobRecord], backend: DiracXBackend) -> None:
    results = backend.submit(records)
    assert [r.error for r in results] == [None] * len(records)
    for rec, res in zip(records, results):
        rec.native_id = res.native_id
        rec.state = res.state


def count_named(client: DiracXClient, tag: str) -> int:
    return len(client.search([{"parameter": "JobName", "operator": "like", "value": f"{tag}.%"}], ["JobID"]))


def test_bulk_of_200_is_batched_listed_and_uploads_one_sandbox(
    backend: DiracXBackend, client: DiracXClient
) -> None:
    records = jobs(200, "bulk200")
    calls = []
    real_submit = backend.client.submit
    backend.client.submit = lambda texts: calls.append(len(texts)) or real_submit(texts)  # type: ignore[method-assign]
    uploads = []
    real_upload = backend.client.upload

    def counting_upload(archive: Archive) -> str:
        uploads.append(archive.checksum)
        return real_upload(archive)

    backend.client.upload = counting_upload  # type: ignore[method-assign]
    accept(records, backend)
    assert calls == [20] * 10  # the server's per-call limit
    assert len(uploads) == 1  # the same sandbox for all 200 jobs
    assert len({r.native_id for r in records}) == 200
    states = backend.status(records)
    assert len(states) == 200
    assert {s.native_state for s in states.values()} == {"Received"}
    assert {s.state for s in states.values()} == {JobState.QUEUED}
    rows = client.search(
        [{"parameter": "JobName", "operator": "like", "value": "bulk200.%"}], ["JobID"], per_page=50
    )
    assert len(rows) == 200  # 4 pages through the 206/416 pagination


def test_parametric_job_of_ten_is_one_parametric_jdl(backend: DiracXBackend) -> None:
    records = jobs(10, "param10", bulk="b1", arguments=["-c", "echo $0 > out.txt", "value"])
    for i, rec in enumerate(records):  # the parameter lands in the arguments
        rec.spec = rec.spec.model_copy(update={"arguments": ["-c", "echo $0 > out.txt", f"value{i}"]})
    sent = []
    real_submit = backend.client.submit
    backend.client.submit = lambda texts: sent.append(list(texts)) or real_submit(texts)  # type: ignore[method-assign]
    accept(records, backend)
    assert len(sent) == 1
    assert len(sent[0]) == 1
    assert "Parameters.a" in sent[0][0]
    found = backend.lookup(records)
    assert [found[r.id].native_id for r in records] == [r.native_id for r in records]  # type: ignore[union-attr]
    # DiracX leaves parametric jobs in Submitting; the backend confirms them
    assert {s.native_state for s in backend.status(records).values()} == {"Received"}


def test_crash_between_upload_and_submit_does_not_duplicate(
    backend: DiracXBackend, client: DiracXClient
) -> None:
    records = jobs(30, "crash30")
    # first life: the sandbox was uploaded and 10 jobs were accepted, then the client died
    backend.client.upload(build_archive(backend.sandbox_files(records[0])))
    accept(records[:10], backend)
    # second life: `sync` looks every submitting job up before submitting anything
    found = backend.lookup(records)
    missing = [r for r in records if found[r.id] is None]
    assert len(missing) == 20
    assert all(found[r.id].native_id == r.native_id for r in records[:10])  # type: ignore[union-attr]
    accept(missing, backend)
    assert count_named(client, "crash30") == 30


def test_rejected_jdl_names_the_attribute(backend: DiracXBackend, client: DiracXClient) -> None:
    platform = jobs(1, "platform", backend_options={"platform": "EL9"})
    bad_type = jobs(1, "badtype", backend_options={"job_type": "Bogus"})
    results = backend.submit(platform + bad_type)
    assert results[0].error is not None
    assert "Platform" in results[0].error.message
    assert results[1].error is not None
    assert "Bogus is not a valid value for JobType" in results[1].error.message
    assert count_named(client, "platform") == count_named(client, "badtype") == 0


def test_expired_token_is_refused_before_submitting(
    backend: DiracXBackend, client: DiracXClient, alice: Path, tmp_path: Path
) -> None:
    expired = expired_copy(alice, tmp_path / "expired.json")
    backend.settings.credentials = expired
    records = jobs(3, "expired")
    with pytest.raises(CredentialError, match="expired"):
        backend.preflight(records)
    with pytest.raises(CredentialError, match="expired"):
        backend.submit(records)
    assert count_named(client, "expired") == 0


def test_pilot_helper_runs_jobs_and_user_gets_outputs(
    backend: DiracXBackend, client: DiracXClient, tmp_path: Path, pilot_env: dict[str, str]
) -> None:
    ok, bad = jobs(1, "roundok") + jobs(1, "roundbad", arguments=["-c", "echo oops >&2 && exit 3"])
    accept([ok, bad], backend)
    results = [run_job(client, int(str(r.native_id)), tmp_path / "pilot") for r in (ok, bad)]
    assert [(r.status, r.exit_code) for r in results] == [("Done", 0), ("Failed", 3)]
    states = backend.status([ok, bad])
    assert (states[ok.id].state, states[ok.id].exit_code) == (JobState.COMPLETED, 0)
    assert (states[bad.id].state, states[bad.id].exit_code) == (JobState.FAILED, 3)
    got = backend.fetch_outputs(ok, tmp_path / "got")
    assert sorted(p.name for p in got) == ["cops-report.json", "out.txt", "std.err", "std.out"]
    assert (tmp_path / "got" / "out.txt").read_text() == "hello\n"
    assert "on-stdout" in (tmp_path / "got" / "std.out").read_text()
    assert "oops" in backend.logs(bad)


def test_cancel_is_a_kill_status(backend: DiracXBackend) -> None:
    records = jobs(2, "cancel")
    accept(records, backend)
    backend.cancel(records)
    states = backend.status(records)
    assert {(s.state, s.native_state) for s in states.values()} == {(JobState.CANCELLED, "Killed")}


def test_hostile_output_sandbox_is_refused(
    backend: DiracXBackend, client: DiracXClient, tmp_path: Path
) -> None:
    (rec,) = jobs(1, "hostile")
    accept([rec], backend)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        evil = tarfile.TarInfo("../../escaped.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    data = zstandard.ZstdCompressor().compress(raw.getvalue())
    pfn = client.upload(Archive(data=data, checksum=hashlib.sha256(data).hexdigest()))
    client.assign_output(int(str(rec.native_id)), pfn)
    dest = tmp_path / "a" / "b"
    with pytest.raises(UnsafeSandbox, match="outside the target"):
        backend.fetch_outputs(rec, dest)
    assert not (tmp_path / "escaped.txt").exists()
