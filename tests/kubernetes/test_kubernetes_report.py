"""What ran for a Kubernetes job, read from its pod and node. No Kubernetes API server can run
here (see test_kubernetes_backend.py), so this feeds the official client's own model objects,
shaped as a kubelet fills them, to the function the backend's reports() applies to listed pods."""

from __future__ import annotations

from datetime import datetime, timezone

from kubernetes import client as k8s

from computeops_grid.backends.kubernetes.report import pod_report
from tests.swarm.helpers import hello, records

DIGEST = "sha256:" + "4f" * 32


def pod(image_id: str, *, node: str | None = "wn-07", exit_code: int = 0) -> k8s.V1Pod:
    started = datetime(2026, 12, 6, 4, 0, 0, tzinfo=timezone.utc)
    finished = datetime(2026, 12, 6, 4, 0, 9, tzinfo=timezone.utc)
    term = k8s.V1ContainerStateTerminated(exit_code=exit_code, started_at=started, finished_at=finished)
    main = k8s.V1ContainerStatus(
        name="main", image="busybox:latest", image_id=image_id, ready=False, restart_count=0,
        state=k8s.V1ContainerState(terminated=term),
    )  # fmt: skip
    return k8s.V1Pod(
        spec=k8s.V1PodSpec(node_name=node, containers=[]),
        status=k8s.V1PodStatus(phase="Succeeded" if exit_code == 0 else "Failed", container_statuses=[main]),
    )


def node_info() -> k8s.V1Node:
    info = k8s.V1NodeSystemInfo(
        architecture="amd64", boot_id="b", container_runtime_version="containerd://1.7.24",
        kernel_version="6.1.0-28-amd64", kube_proxy_version="v1.31.4", kubelet_version="v1.31.4",
        machine_id="m", operating_system="linux", os_image="Debian GNU/Linux 12 (bookworm)", system_uuid="u",
    )  # fmt: skip
    return k8s.V1Node(status=k8s.V1NodeStatus(node_info=info))


def test_pod_report_gives_digest_node_runtime_times_and_exit_code() -> None:
    (job,) = records(hello(arguments=["-c", "exit 2"]), "kubernetes")
    report = pod_report(job, pod(f"docker.io/library/busybox@{DIGEST}", exit_code=2), node_info())
    assert report["image_digest"] == DIGEST
    assert report["engine_image"] == {"ref": "busybox:latest", "id": f"docker.io/library/busybox@{DIGEST}"}
    assert (report["runtime"], report["runtime_version"]) == ("kubernetes/containerd", "containerd 1.7.24")
    assert report["node"] == {
        "hostname": "wn-07", "os": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0-28-amd64",
        "arch": "amd64", "kubelet_version": "v1.31.4",
    }  # fmt: skip
    assert report["exit_code"] == 2
    assert report["usage"] == {"wall_s": 9.0}
    assert report["command"] == ["sh", "-c", "exit 2"]


def test_pod_report_without_a_readable_node_or_digest_keeps_what_is_known() -> None:
    (job,) = records(hello(), "kubernetes")
    report = pod_report(job, pod("busybox:latest"), None)
    assert report["image_digest"] is None
    assert report["node"]["hostname"] == "wn-07" and report["node"]["kernel"] is None
    assert report["runtime"] == "kubernetes"
    assert report["exit_code"] == 0
