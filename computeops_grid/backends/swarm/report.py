"""What ran for a Swarm job, from what the engine knows (no wrapper runs there).

Shaped like the pilot wrapper's report (``image``, ``image_digest``, ``runtime``, ``node``,
times, ``exit_code``) so the store and ``cops-grid show`` treat both alike. The digest is the
engine's image id (``sha256:`` of the image config, what ``docker images`` shows); the node
is the swarm node the task ran on (kernel and OS only where that node is the one this API
answers for: Swarm does not report them for other nodes).
"""

from __future__ import annotations

import logging
from typing import Any

from computeops_grid.backends.swarm import spec as sp
from computeops_grid.jobs.record import JobRecord

log = logging.getLogger(__name__)


def task_report(client: Any, job: JobRecord, task: dict[str, Any]) -> dict[str, Any]:
    """The report of one ended task (API calls that fail leave their fields empty, logged)."""
    status = task.get("Status", {})
    container = status.get("ContainerStatus", {})
    image = task.get("Spec", {}).get("ContainerSpec", {}).get("Image", "")
    inspected = _call(client.api.inspect_container, container.get("ContainerID")) or {}
    state = inspected.get("State", {})
    image_id = inspected.get("Image") or (_call(client.api.inspect_image, image) or {}).get("Id")
    node = _node(client, task.get("NodeID"))
    report: dict[str, Any] = {
        "image": job.spec.image,
        "image_digest": image_id,
        "image_digest_source": "engine-image-id" if image_id else None,
        "engine_image": {"ref": image, "id": image_id},
        "runtime": "docker-swarm",
        "runtime_version": node.pop("engine_version", None),
        "mode": "daemon",
        "why": "Swarm runs the job's image as a replicated-job service (no pilot wrapper)",
        "node": node,
        "command": [job.spec.command, *job.spec.arguments],
        "exit_code": container.get("ExitCode"),
        "signal": None,
        "wrapper_exit_reason": None,
        "payload_started_at": _time(state.get("StartedAt")),
        "payload_ended_at": _time(state.get("FinishedAt")) or _time(status.get("Timestamp")),
    }
    if report["payload_started_at"] and report["payload_ended_at"]:
        # a container that exits at once may be stamped finished a few µs before started
        wall = round(max(0.0, report["payload_ended_at"] - report["payload_started_at"]), 4)
        report["usage"] = {"wall_s": wall}
    return report


def _node(client: Any, node_id: str | None) -> dict[str, Any]:
    attrs = _call(client.api.inspect_node, node_id) or {}
    desc = attrs.get("Description", {})
    node: dict[str, Any] = {
        "hostname": desc.get("Hostname"),
        "arch": desc.get("Platform", {}).get("Architecture"),
        "cpus": (desc.get("Resources", {}).get("NanoCPUs") or 0) // 10**9 or None,
        "engine_version": desc.get("Engine", {}).get("EngineVersion"),
        "swarm_node_id": node_id,
    }
    info = _call(client.info) or {}
    if node_id and info.get("Swarm", {}).get("NodeID") == node_id:
        node.update(os=info.get("OperatingSystem"), kernel=info.get("KernelVersion"), gpus=[])
    return node


def _call(fn: Any, *args: Any) -> Any:
    if args and not args[0]:
        return None
    try:
        return fn(*args)
    except Exception as exc:  # the engine's errors are many (docker.errors, requests): a field stays empty
        log.info("swarm report: %s failed: %s", getattr(fn, "__name__", fn), exc)
        return None


def _time(text: object) -> float | None:
    if not isinstance(text, str) or not text or text.startswith("0001-"):
        return None
    try:
        return sp.parse_time(text)
    except ValueError:
        return None
