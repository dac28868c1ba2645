"""HTCondor-CE submit descriptions turned into job ClassAds by the bindings' own parser
(version-1 ``htcondor.Submit(...).jobs()`` of the 24.0 wheel works offline)."""

from __future__ import annotations

import time
from pathlib import Path

import htcondor
import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.htcondor_ce.backend import HTCondorCEBackend, HTCondorCESettings
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord

CE = "ce.example.org"


def records(n: int, bulk: str | None = None, **spec: object) -> list[JobRecord]:
    fields: dict[str, object] = {
        "name": "hello", "image": "docker://busybox:latest", "command": "sh",
        "arguments": ["-c", "echo \"hi there\"; echo it's $0 > out.txt"],
    }  # fmt: skip
    fields.update(spec)
    out = []
    for i in range(n):
        args = [*fields["arguments"], f"v{i}"] if bulk else fields["arguments"]  # type: ignore[misc]
        job_spec = JobSpec.model_validate({**fields, "arguments": args})
        out.append(
            JobRecord(id=f"c0ffee{i:06d}", spec=job_spec, backend="htcondor-ce", bulk_id=bulk, index=i)
        )
    return out


@pytest.fixture
def backend(tmp_path: Path, token_file: Path) -> HTCondorCEBackend:
    ctx = BackendContext(home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=tmp_path, pilot=worker.pilot())
    return HTCondorCEBackend(HTCondorCESettings(ce=CE), ctx)


def ads(backend: HTCondorCEBackend, jobs: list[JobRecord]) -> list[dict[str, object]]:
    desc = backend.description(jobs)
    for job in jobs:  # the submitter checks that each initialdir exists
        (backend.context.jobs_dir / job.id).mkdir(parents=True, exist_ok=True)
    sub = htcondor.Submit(desc.body)
    result = [
        dict(ad)
        for ad in sub.jobs(count=1, itemdata=iter(desc.items), clusterid=4242, qdate=int(time.time()))
    ]
    # the full text (what --dry-run prints) carries the same items in its queue statement
    assert list(htcondor.Submit(desc.text).itemdata()) == desc.items
    return result


def split_v2(arguments: str) -> list[str]:
    """Split a V2 ``Arguments`` ClassAd value ('' inside quotes is a literal ')."""
    args: list[str] = []
    current, quoted, i, have = "", False, 0, False
    while i < len(arguments):
        c = arguments[i]
        if c == "'":
            if quoted and arguments[i + 1 : i + 2] == "'":
                current += "'"
                i += 2
                continue
            quoted, have = not quoted, True
        elif c == " " and not quoted:
            if current or have:
                args.append(current)
            current, have = "", False
        else:
            current += c
        i += 1
    if current or have:
        args.append(current)
    return args


def test_single_job_ad_is_a_vanilla_job_for_the_ce_router(backend: HTCondorCEBackend) -> None:
    """A vanilla job for the CE's own schedd (as ``condor_submit -remote``; test_ce.py shows why
    not the grid universe), with the attributes HTCondor-CE routes on; the token authenticates
    the connection, it is no job attribute."""
    (ad,) = ads(backend, records(1, resources={"cores": 4, "memory": "8GiB", "walltime": "1:30:00"}))
    assert ad["JobUniverse"] == 5
    assert "GridResource" not in ad
    assert "ScitokensFile" not in ad
    assert (ad["xcount"], ad["maxMemory"], ad["maxWallTime"]) == (4, 8192, 90)
    assert (ad["RequestCpus"], ad["RequestMemory"]) == (4, 8192)
    assert ad["Cmd"] == str(worker.pilot())
    assert ad["CopsGridId"] == "c0ffee000000"
    assert ad["Iwd"] == str(backend.context.jobs_dir / "c0ffee000000")
    assert (ad["ShouldTransferFiles"], ad["WhenToTransferOutput"]) == ("YES", "ON_EXIT")
    assert "StageOutFinish" in str(ad["LeaveJobInQueue"])  # leaves the queue once retrieved
    assert split_v2(str(ad["Arguments"])) == [
        "--image", "docker://busybox:latest", "--report", "cops-report.json",
        "--", "sh", "-c", "echo \"hi there\"; echo it's $0 > out.txt",
    ]  # fmt: skip


def test_bulk_of_100_is_one_cluster_with_one_ad_per_job(backend: HTCondorCEBackend) -> None:
    jobs = records(100)
    result = ads(backend, jobs)
    assert len(result) == 100
    assert [a["ProcId"] for a in result] == list(range(100))
    assert {a["ClusterId"] for a in result} == {4242}
    assert [a["CopsGridId"] for a in result] == [j.id for j in jobs]


def test_parametric_job_carries_each_value(backend: HTCondorCEBackend) -> None:
    jobs = records(5, bulk="b1")
    result = ads(backend, jobs)
    assert [split_v2(str(a["Arguments"]))[-1] for a in result] == [f"v{i}" for i in range(5)]


def test_gpu_job_requests_gpus(backend: HTCondorCEBackend) -> None:
    (ad,) = ads(backend, records(1, resources={"gpus": 2, "cores": 8}))
    assert ad["RequestGPUs"] == 2
    assert ad["xcount"] == 8
    assert "RequestGPUs" in str(ad["Requirements"])
    assert "--gpu" in split_v2(str(ad["Arguments"]))


def test_token_from_the_environment_is_written_to_a_private_file(
    backend: HTCondorCEBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.htcondor.conftest import make_jwt

    monkeypatch.delenv("BEARER_TOKEN_FILE")
    raw = make_jwt(time.time() + 600)
    monkeypatch.setenv("BEARER_TOKEN", raw)
    path = backend.token_file(backend.token())
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == raw
    assert backend.token_file(backend.token()) != path  # a new private file each time


def test_dry_run_text_is_a_complete_submit_file(backend: HTCondorCEBackend) -> None:
    text = backend.describe(records(3))
    assert text.count("queue cops_id,cops_args from (") == 1
    assert "universe                = vanilla" in text
    sub = htcondor.Submit(text)
    assert [i["cops_id"] for i in sub.itemdata()] == ["c0ffee000000", "c0ffee000001", "c0ffee000002"]
