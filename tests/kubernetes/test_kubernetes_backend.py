"""The Kubernetes backend's client side.

No Kubernetes API server can run on this machine (none is packaged for the registries
reachable here), so the live calls (create/list/delete Jobs, list pods, read logs) are
written to the official ``kubernetes`` client and are NOT exercised against a server in
these tests. What is tested: the error without a cluster, the dry run through the real
CLI, and the pod -> job-state mapping on the client's own model objects.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client as k8s

from computeops_grid.backends.kubernetes import manifest as km
from computeops_grid.backends.kubernetes.backend import pod_status
from computeops_grid.jobs.state import JobState
from tests.conftest import Cli
from tests.kubernetes.conftest import make_backend
from tests.swarm.helpers import hello, records


def test_without_kubeconfig_submit_fails_with_a_hint(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, kubeconfig=str(tmp_path / "missing-kubeconfig"))
    (result,) = backend.submit(records(hello(arguments=["-c", "true"]), "kubernetes"))
    assert result.native_id is None
    assert result.error is not None
    assert "no usable kubeconfig" in result.error.message
    assert result.error.hint is not None
    assert "--dry-run" in result.error.hint
    health = backend.check()
    assert not health.reachable


def test_dry_run_prints_a_valid_manifest_and_submits_nothing(cli: Cli) -> None:
    res = cli("submit", "etc/examples/hello.yaml", "--backend", "kubernetes", "--dry-run",
              cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert res.code == 0, res.stderr
    (doc,) = yaml.safe_load_all(res.stdout)
    job = km.from_dict(doc)
    assert job.kind == "Job"
    assert job.spec.template.spec.containers[0].args[1].startswith('echo "Hello from $$(uname -s)')
    listed = cli("list", "--json")
    assert listed.code == 0
    assert listed.json() == []


def _pod(
    phase: str, *, exit_code: int | None = None, reason: str | None = None, waiting: str | None = None
) -> k8s.V1Pod:
    state = k8s.V1ContainerState()
    if exit_code is not None:
        state.terminated = k8s.V1ContainerStateTerminated(exit_code=exit_code, reason=reason)
    if waiting is not None:
        state.waiting = k8s.V1ContainerStateWaiting(reason=waiting, message="back-off pulling image")
    main = k8s.V1ContainerStatus(
        name="main", image="i", image_id="", ready=False, restart_count=0, state=state
    )
    return k8s.V1Pod(status=k8s.V1PodStatus(phase=phase, container_statuses=[main]))


def test_pod_phases_and_exit_codes_map_to_job_states() -> None:
    job = k8s.V1Job(status=k8s.V1JobStatus())
    assert pod_status(_pod("Succeeded", exit_code=0, reason="Completed"), job).state is JobState.COMPLETED
    failed = pod_status(_pod("Failed", exit_code=3, reason="Error"), job)
    assert (failed.state, failed.exit_code, failed.message) == (JobState.FAILED, 3, "")
    oom = pod_status(_pod("Failed", exit_code=137, reason="OOMKilled"), job)
    assert (oom.exit_code, oom.message) == (137, "killed: over its memory limit (OOMKilled)")
    pending = pod_status(_pod("Pending", waiting="ImagePullBackOff"), job)
    assert pending.state is JobState.QUEUED
    assert pending.message.startswith("ImagePullBackOff")
    assert pod_status(_pod("Running"), job).state is JobState.RUNNING


def test_job_past_its_deadline_without_pod_is_failed() -> None:
    cond = k8s.V1JobCondition(
        type="Failed", status="True", reason="DeadlineExceeded", message="Job was active longer"
    )
    info = pod_status(None, k8s.V1Job(status=k8s.V1JobStatus(conditions=[cond])))
    assert info.state is JobState.FAILED
    assert info.message.startswith("DeadlineExceeded")
    assert pod_status(None, k8s.V1Job(status=k8s.V1JobStatus())).state is JobState.QUEUED
