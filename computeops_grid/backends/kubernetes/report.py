"""What ran for a Kubernetes job, from its pod and node (no wrapper runs there).

Shaped like the pilot wrapper's report so the store and ``cops-grid show`` treat both alike:
the digest is the container's ``imageID`` as the kubelet reports it (``docker-pullable://
repo@sha256:...``, ``docker://sha256:...`` or ``sha256:...``: the part from ``sha256:`` on), the
node the pod's ``nodeName`` with what the node's ``nodeInfo`` says (OS, kernel, architecture,
container runtime and its version).
"""

from __future__ import annotations

from typing import Any

from computeops_grid.jobs.record import JobRecord


def pod_report(job: JobRecord, pod: Any, node: Any | None) -> dict[str, Any]:
    """The report of one ended pod; ``node`` is its V1Node, None when it could not be read."""
    main = next((c for c in (pod.status.container_statuses or []) if c.name == "main"), None)
    term = main.state.terminated if main is not None and main.state is not None else None
    image_id = (main.image_id or "") if main is not None else ""
    digest = image_id[image_id.index("sha256:") :] if "sha256:" in image_id else None
    info = node.status.node_info if node is not None and node.status is not None else None
    engine, _, version = (info.container_runtime_version or "").partition("://") if info else ("", "", "")
    report: dict[str, Any] = {
        "image": job.spec.image,
        "image_digest": digest,
        "image_digest_source": "kubelet-image-id" if digest else None,
        "engine_image": {"ref": main.image if main is not None else None, "id": image_id or None},
        "runtime": f"kubernetes/{engine}" if engine else "kubernetes",
        "runtime_version": f"{engine} {version}".strip() if engine else None,
        "mode": "pod",
        "why": "Kubernetes runs the job's image as a batch/v1 Job (no pilot wrapper)",
        "node": {
            "hostname": pod.spec.node_name if pod.spec is not None else None,
            "os": info.os_image if info else None,
            "kernel": info.kernel_version if info else None,
            "arch": info.architecture if info else None,
            "kubelet_version": info.kubelet_version if info else None,
        },
        "command": [job.spec.command, *job.spec.arguments],
        "exit_code": term.exit_code if term is not None else None,
        "signal": term.signal if term is not None else None,
        "wrapper_exit_reason": None,
        "payload_started_at": _ts(term.started_at) if term is not None else None,
        "payload_ended_at": _ts(term.finished_at) if term is not None else None,
    }
    if report["payload_started_at"] is not None and report["payload_ended_at"] is not None:
        report["usage"] = {
            "wall_s": round(max(0.0, report["payload_ended_at"] - report["payload_started_at"]), 3)
        }
    return report


def _ts(value: Any) -> float | None:
    """The client's datetimes as epoch seconds."""
    return float(value.timestamp()) if value is not None and hasattr(value, "timestamp") else None
