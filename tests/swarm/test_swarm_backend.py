"""The Swarm backend against a real dockerd initialised as a one-node swarm (no mocks)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from computeops_grid.backends.common.docker_image import CACHE_REPO, ensure_engine_image
from computeops_grid.backends.swarm.backend import SwarmBackend, safe_extract
from computeops_grid.bench.daemons import PrivateDockerd
from computeops_grid.errors import BackendUnavailable
from computeops_grid.jobs.state import JobState
from tests.conftest import EXAMPLES
from tests.swarm.conftest import make_backend
from tests.swarm.helpers import hello, records, submitted, wait_final, wait_state

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_hello_example_runs_with_output_logs_and_outputs(swarm: SwarmBackend, tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "hello.yaml").read_text())
    jobs = submitted(swarm, records(spec))
    info = wait_final(swarm, jobs)[jobs[0].id]
    assert (info.state, info.exit_code) == (JobState.COMPLETED, 0)
    assert "Hello from Linux in a container, job hello" in swarm.logs(jobs[0])
    fetched = swarm.fetch_outputs(jobs[0], tmp_path / "out")
    assert (tmp_path / "out" / "result.txt").read_text() == "done\n"
    assert {p.name for p in fetched} == {"result.txt", "stdout", "stderr"}
    assert "Hello from Linux" in (tmp_path / "out" / "stdout").read_text()


def test_exit_code_and_stderr_of_a_failing_payload(swarm: SwarmBackend) -> None:
    jobs = submitted(swarm, records(hello(arguments=["-c", "echo oops >&2; exit 3"])))
    info = wait_final(swarm, jobs)[jobs[0].id]
    assert (info.state, info.exit_code) == (JobState.FAILED, 3)
    assert "non-zero exit (3)" in info.message
    assert swarm.logs(jobs[0]).strip() == "oops"
    # restart condition none: the failed task was not retried
    service = swarm.client().services.get(jobs[0].native_id)  # type: ignore[no-untyped-call]  # docker SDK
    assert len(service.tasks()) == 1


def test_parametric_job_of_20_records_every_exit_code(swarm: SwarmBackend) -> None:
    spec = hello(name="p-${i}", arguments=["-c", "echo element ${i}; exit $(( ${i} % 4 ))"],
                 parameters={"i": {"start": 0, "stop": 19}}, resources={"memory": "64MiB"})  # fmt: skip
    jobs = submitted(swarm, records(spec))
    assert len(jobs) == 20
    assert len({j.bulk_id for j in jobs}) == 1
    infos = wait_final(swarm, jobs, timeout=180)
    for job in jobs:
        i = int(job.params["i"])
        assert infos[job.id].exit_code == i % 4, (job.params, infos[job.id])
        assert infos[job.id].state is (JobState.COMPLETED if i % 4 == 0 else JobState.FAILED)
    assert swarm.logs(jobs[7]).strip() == "element 7"


def test_cancel_stops_the_running_service(swarm: SwarmBackend) -> None:
    swarm.settings.stop_grace = 1  # sh as PID 1 ignores SIGTERM: SIGKILL after 1 s
    jobs = submitted(swarm, records(hello(arguments=["-c", "sleep 300"])))
    wait_state(swarm, jobs[0], "running")
    client = swarm.client()
    label = f"org.cops-grid.id={jobs[0].id}"
    assert len(client.containers.list(filters={"label": label})) == 1
    started = time.monotonic()
    swarm.cancel(jobs)
    assert time.monotonic() - started < 8
    assert swarm.status(jobs) == {}  # the service is gone
    assert swarm.lookup(jobs) == {jobs[0].id: None}
    assert client.containers.list(filters={"label": label}) == []  # nothing runs any more


def test_over_memory_limit_is_killed_and_says_so(swarm: SwarmBackend) -> None:
    script = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"
    jobs = submitted(swarm, records(hello(arguments=["-c", script], resources={"memory": "16MiB"})))
    info = wait_final(swarm, jobs)[jobs[0].id]
    assert (info.state, info.exit_code) == (JobState.FAILED, 137)
    assert "memory limit" in info.message


def test_gpu_job_stays_queued_without_gpu_nodes(swarm: SwarmBackend) -> None:
    jobs = submitted(swarm, records(hello(arguments=["-c", "true"], resources={"gpus": 1})))
    info = wait_state(swarm, jobs[0], "queued")
    for _ in range(30):
        info = swarm.status(jobs)[jobs[0].id]
        if "insufficient resources" in info.message:
            break
        time.sleep(0.2)
    assert info.state is JobState.QUEUED
    assert "insufficient resources" in info.message


def test_walltime_is_enforced_by_status(swarm: SwarmBackend) -> None:
    jobs = submitted(swarm, records(hello(arguments=["-c", "sleep 300"], resources={"walltime": "00:00:02"})))
    info = wait_final(swarm, jobs, timeout=60)[jobs[0].id]
    assert info.state is JobState.FAILED
    assert "walltime 2s exceeded" in info.message


def test_unknown_image_is_refused_with_a_hint(swarm: SwarmBackend) -> None:
    jobs = records(hello(image="docker://example.org/nosuch:1", arguments=["-c", "true"]))
    (result,) = swarm.submit(jobs)
    assert result.native_id is None
    assert result.error is not None
    assert "neither known to the Docker engine nor in the image repository" in result.error.message
    assert result.error.hint
    assert "cops-grid image publish" in result.error.hint


def test_resubmit_after_crash_finds_the_service(swarm: SwarmBackend) -> None:
    jobs = records(hello(arguments=["-c", "true"]))
    first = swarm.submit(jobs)[0]
    found = swarm.lookup(jobs)[jobs[0].id]
    assert found is not None
    assert found.native_id == first.native_id
    again = swarm.submit(jobs)[0]  # submit after a crash: no second service
    assert again.native_id == first.native_id


def test_rootfs_import_is_cached_by_digest(
    swarm_daemon: PrivateDockerd, swarm: SwarmBackend, image_root: Path
) -> None:
    client = swarm.client()
    tag1 = ensure_engine_image(client, "docker://busybox:latest", image_root)
    tag2 = ensure_engine_image(client, "docker://busybox:latest", image_root)
    digest = (image_root / "registry.hub.docker.com/library/busybox:latest").resolve().name
    assert tag1 == tag2 == f"{CACHE_REPO}:{digest}"
    assert [t for i in client.images.list(CACHE_REPO) for t in i.tags] == [tag1]


def test_unreachable_engine_is_transient(tmp_path: Path, image_root: Path) -> None:
    daemon = PrivateDockerd(tmp_path / "none")
    backend = make_backend(daemon, tmp_path, image_root)
    with pytest.raises(BackendUnavailable) as info:  # the answer for every job of the call
        backend.submit(records(hello(arguments=["-c", "true"])))
    assert info.value.transient
    health = backend.check()
    backend.close()
    assert not health.reachable
    assert "no Docker engine socket" in health.detail


def test_check_and_describe(swarm: SwarmBackend) -> None:
    health = swarm.check()
    assert health.reachable
    assert "swarm of 1 node" in health.detail
    job = records(hello(arguments=["-c", "echo 'a b'"], resources={"gpus": 2}))[0]
    text = swarm.describe([job])
    assert "--mode replicated-job --restart-condition none" in text
    assert "--generic-resource NVIDIA-GPU=2" in text
    assert "busybox:latest sh -c 'echo '\"'\"'a b'\"'\"''" in text


def test_safe_extract_keeps_archive_members_inside(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("ok.txt", "../escape.txt", "/abs.txt"):
            data = name.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    buf.seek(0)
    target = tmp_path / "t"
    target.mkdir()
    safe_extract(buf, target)
    assert sorted(p.name for p in target.rglob("*")) == ["ok.txt"]  # absolute, .., links: skipped
    assert not (tmp_path / "escape.txt").exists()
