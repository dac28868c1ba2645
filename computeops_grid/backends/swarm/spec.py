"""A cops-grid job as a Docker Swarm one-shot service, and a task's state as a job state.

How a job maps (the image *is* the container here, so no pilot wrapper runs inside):

* the service runs ``[command, *arguments]`` as the container's argv (no shell), with
  the job's environment, in the working directory ``/cops-job``;
* mode ``replicated-job`` with **one** replica and restart condition ``none``: the job's
  exit code is the task container's exit code, and a failure is never retried. One
  service per job, also for bulk/parametric elements: Docker 20.10's swarmkit restarts
  failed tasks of a ``replicated-job`` with more than one replica despite restart
  condition ``none`` (measured here), which would turn exit codes into endless retries;
* cores and memory become reservations (swarm queues a task until they fit: this is
  what bounds the concurrency of a bulk) and limits; GPUs become generic resources.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from docker.types import Mount, Resources, RestartPolicy, ServiceMode

from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

WORKDIR = "/cops-job"
LABEL_ID = "org.cops-grid.id"
LABEL_NAME = "org.cops-grid.name"
LABEL_BULK = "org.cops-grid.bulk"
LABEL_INDEX = "org.cops-grid.index"

# swarm task state -> job state (terminal ones per the swarmkit API)
STATE_MAP: dict[str, JobState] = {
    "new": JobState.QUEUED,
    "allocated": JobState.QUEUED,
    "pending": JobState.QUEUED,
    "assigned": JobState.QUEUED,
    "accepted": JobState.QUEUED,
    "preparing": JobState.QUEUED,
    "ready": JobState.QUEUED,
    "starting": JobState.QUEUED,
    "running": JobState.RUNNING,
    "complete": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "rejected": JobState.FAILED,
    "orphaned": JobState.FAILED,
    "shutdown": JobState.CANCELLED,
    "remove": JobState.CANCELLED,
}


def service_name(job: JobRecord) -> str:
    """Names embed the cops-grid id, so ``lookup`` finds a job after a crash."""
    return f"cops-{job.id}"


def labels(job: JobRecord) -> dict[str, str]:
    out = {LABEL_ID: job.id, LABEL_NAME: job.name, LABEL_INDEX: str(job.index)}
    if job.bulk_id:
        out[LABEL_BULK] = job.bulk_id
    return out


def service_kwargs(
    job: JobRecord,
    image: str,
    *,
    reserve: bool,
    gpu_resource: str,
    bind: str | None = None,
    network: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``DockerClient.services.create`` for one job."""
    spec = job.spec
    res = spec.resources
    nano_cpus = res.cores * 10**9
    generic: dict[str, int | str] | None = {gpu_resource: res.gpus} if res.gpus else None
    resources = Resources(
        cpu_limit=nano_cpus,
        mem_limit=res.memory,
        cpu_reservation=nano_cpus if reserve else None,
        mem_reservation=res.memory if reserve else None,
        generic_resources=generic,
    )
    kwargs: dict[str, Any] = {
        "image": image,
        "command": [spec.command, *spec.arguments],
        "name": service_name(job),
        "labels": labels(job),
        "container_labels": {LABEL_ID: job.id},
        "env": [f"{k}={v}" for k, v in sorted(spec.environment.items())],
        "workdir": WORKDIR,
        "mode": ServiceMode("replicated-job", replicas=1, concurrency=1),
        "restart_policy": RestartPolicy(condition="none"),
        "resources": resources,
    }
    if bind:
        kwargs["mounts"] = [Mount(target=WORKDIR, source=bind, type="bind")]
    if network:
        kwargs["networks"] = [network]
    return kwargs


def cli_equivalent(job: JobRecord, image: str, *, reserve: bool, gpu_resource: str) -> str:
    """The ``docker service create`` command doing what :func:`service_kwargs` asks (dry run)."""
    res = job.spec.resources
    argv = ["docker", "service", "create", "--detach", "--name", service_name(job)]
    argv += ["--mode", "replicated-job", "--restart-condition", "none", "--workdir", WORKDIR]
    for key, value in labels(job).items():
        argv += ["--label", f"{key}={value}"]
    for key, value in sorted(job.spec.environment.items()):
        argv += ["--env", f"{key}={value}"]
    argv += ["--limit-cpu", str(res.cores), "--limit-memory", str(res.memory)]
    if reserve:
        argv += ["--reserve-cpu", str(res.cores), "--reserve-memory", str(res.memory)]
    if res.gpus:
        argv += ["--generic-resource", f"{gpu_resource}={res.gpus}"]
    argv += [image, job.spec.command, *job.spec.arguments]
    return shlex.join(argv)


def latest_task(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The task that speaks for the job (one replica: the most recently created one)."""
    if not tasks:
        return None
    return max(tasks, key=lambda t: (t.get("CreatedAt", ""), t.get("Version", {}).get("Index", 0)))


def parse_time(text: str) -> float:
    """Swarm's RFC 3339 timestamps with nanoseconds -> epoch seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(head + "+00:00").timestamp()
    return stamp + (float(f"0.{frac}") if frac.isdigit() else 0.0)
