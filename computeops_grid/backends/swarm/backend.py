"""The Docker Swarm backend: each job is a one-shot ``replicated-job`` service.

Talks to a swarm manager through the Docker Engine API (the ``docker`` SDK, no shell).
See :mod:`computeops_grid.backends.swarm.spec` for how a job's command, resources and
exit code map onto a service. Finished services are kept ``keep_finished`` seconds for
``logs`` and ``get``, then removed by the next ``status``; ``cancel`` removes the
service, which stops its container.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import docker
import docker.errors
from pydantic import Field

from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.backends.common.cancel import not_found, split_ended, stopped
from computeops_grid.backends.common.docker_image import engine_name, ensure_engine_image
from computeops_grid.backends.common.http import status_failure, transport_failure
from computeops_grid.backends.common.jobdir import input_sources, job_workdir, link_or_copy
from computeops_grid.backends.common.outputs import collect_outputs
from computeops_grid.backends.common.retry import one_by_one
from computeops_grid.backends.swarm import spec as sp
from computeops_grid.backends.swarm.report import task_report
from computeops_grid.errors import BackendError, BackendUnavailable
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)


HINT = "check that dockerd runs and is a swarm manager: `docker info`"


class SwarmSettings(BackendSettings):
    docker_host: str | None = Field(
        default=None, description="Engine API of a swarm manager (default: $DOCKER_HOST)"
    )
    reserve: bool = Field(
        default=True, description="reserve the job's cores and memory (swarm queues what does not fit)"
    )
    bind_workdir: bool = Field(
        default=False,
        description="bind the job directory into the container (one node or shared FS); needed for inputs",
    )
    keep_finished: int = Field(
        default=86400, ge=0, description="seconds a finished service is kept for logs/outputs"
    )
    gpu_resource: str = Field(default="NVIDIA-GPU", description="generic resource name of GPUs on the nodes")
    network: str | None = Field(default=None, description="attach services to this network")
    stop_grace: float = Field(default=10, ge=0, description="seconds between SIGTERM and SIGKILL on cancel")


class SwarmBackend:
    """Jobs as swarm services named ``cops-<id>``; ``native_id`` is the service ID."""

    name: ClassVar[str] = "swarm"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BULK_SUBMIT, Capability.CANCEL, Capability.OUTPUTS, Capability.LOGS,
         Capability.GPU, Capability.DETACHED}
    )  # fmt: skip
    Settings: ClassVar[type[BackendSettings]] = SwarmSettings

    def __init__(self, settings: SwarmSettings, context: BackendContext) -> None:
        self.settings = settings
        self.ctx = context
        self._docker: docker.DockerClient | None = None

    # -- connection -------------------------------------------------------------
    def client(self) -> docker.DockerClient:
        """The Engine API client, created on first use (dry runs never connect)."""
        if self._docker is None:
            host = self.settings.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            hint = "start dockerd, or set backends.swarm.docker_host to a swarm manager"
            if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
                # checked first: the SDK leaks the socket of a failed unix connection
                raise BackendUnavailable(f"no Docker engine socket at {host}", backend=self.name, hint=hint)
            try:
                self._docker = docker.DockerClient(base_url=host, timeout=60)
            except docker.errors.DockerException as exc:
                raise BackendUnavailable(
                    f"cannot reach the Docker engine at {host}: {exc}", backend=self.name, hint=hint
                ) from exc
        return self._docker

    def close(self) -> None:
        """Close the API connection pool (the backend reconnects on next use)."""
        if self._docker is not None:
            self._docker.close()
            self._docker = None

    def _services(self) -> dict[str, Any]:
        """cops-grid services by cops-grid id (one API call)."""
        try:
            services = self.client().services.list(filters={"label": sp.LABEL_ID})
        except Exception as exc:
            raise _unavailable(exc) from exc
        return {s.attrs["Spec"]["Labels"][sp.LABEL_ID]: s for s in services}

    def _tasks(self) -> dict[str, list[dict[str, Any]]]:
        """All tasks by service ID (one API call, also for 500 jobs)."""
        try:
            tasks: list[dict[str, Any]] = self.client().api.tasks()  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise _unavailable(exc) from exc
        by_service: dict[str, list[dict[str, Any]]] = {}
        for task in tasks:
            by_service.setdefault(task["ServiceID"], []).append(task)
        return by_service

    # -- submission -------------------------------------------------------------
    def _bind(self, job: JobRecord) -> str | None:
        if not self.settings.bind_workdir:
            if job.spec.inputs:
                raise BackendError(
                    "jobs with inputs need the job directory bound into the container",
                    backend=self.name,
                    hint="set backends.swarm.bind_workdir: true (one-node swarm or a shared filesystem)",
                )
            return None
        workdir = job_workdir(job, self.ctx.jobs_dir)
        workdir.mkdir(parents=True, exist_ok=True)
        for src in input_sources(job):
            link_or_copy(src, workdir / src.name)
        return str(workdir.resolve())

    def _create(self, job: JobRecord, image: str, existing: dict[str, Any]) -> SubmitResult:
        if job.id in existing:  # accepted by an earlier, interrupted submit
            return SubmitResult(job.id, existing[job.id].id)
        kwargs = sp.service_kwargs(
            job, image, reserve=self.settings.reserve, gpu_resource=self.settings.gpu_resource,
            bind=self._bind(job), network=self.settings.network,
        )  # fmt: skip
        try:
            service = self.client().services.create(**kwargs)  # type: ignore[no-untyped-call]
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # the name cops-<id> exists: an earlier try did arrive
                found = self._services().get(job.id)
                if found is not None:
                    return SubmitResult(job.id, found.id)
            raise status_failure(exc.status_code or 500, _api_message(exc), backend=self.name) from exc
        except Exception as exc:  # requests/urllib3: the connection failed or the reply was lost
            raise transport_failure(exc, "creating the service", backend=self.name, hint=HINT) from exc
        return SubmitResult(job.id, service.id)

    def _image(self, spec_image: str, images: dict[str, str | BackendError]) -> str:
        """The engine's image for a job image, converted once per submit (errors too)."""
        if spec_image not in images:
            try:
                images[spec_image] = ensure_engine_image(self.client(), spec_image, self.ctx.image_root)
            except BackendError as exc:
                images[spec_image] = exc
        image = images[spec_image]
        if isinstance(image, BackendError):
            raise image
        return image

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        """One service per job; a lost reply stops the loop (see :func:`one_by_one`)."""
        existing = self._services()  # nothing is sent before this answers
        images: dict[str, str | BackendError] = {}
        return one_by_one(jobs, lambda job: self._create(job, self._image(job.spec.image, images), existing))

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        existing = self._services()
        return {j.id: SubmitResult(j.id, existing[j.id].id) if j.id in existing else None for j in jobs}

    # -- following --------------------------------------------------------------
    def _task_status(self, job: JobRecord, service: Any, task: dict[str, Any] | None) -> StatusInfo:
        if task is None:
            return StatusInfo(JobState.QUEUED, message="service created, no task yet", native_state="none")
        status = task.get("Status", {})
        native = status.get("State", "")
        state = sp.STATE_MAP.get(native)
        if state is None:
            log.warning("swarm task state %r of job %s is unknown: no change", native, job.id)
            return StatusInfo(job.state, native_state=native)
        err = status.get("Err", "")
        exit_code = status.get("ContainerStatus", {}).get("ExitCode")
        if state is JobState.RUNNING and self._over_walltime(job, status):
            service.remove()
            return StatusInfo(
                JobState.FAILED, message=f"walltime {job.spec.resources.walltime}s exceeded: removed"
            )
        if state is JobState.COMPLETED:
            return StatusInfo(state, exit_code=0, native_state=native)
        if state is JobState.FAILED:
            message = err or native
            if exit_code == 137 and self._oom_killed(status):
                message = f"killed: over its memory limit of {job.spec.resources.memory} bytes"
            return StatusInfo(state, exit_code=exit_code if native == "failed" else None, message=message,
                              native_state=native)  # fmt: skip
        return StatusInfo(state, message=err, native_state=native)

    def _over_walltime(self, job: JobRecord, status: dict[str, Any]) -> bool:
        """Swarm has no walltime: enforce it whenever the status is asked for."""
        started = status.get("Timestamp")
        if not isinstance(started, str):
            return False
        return time.time() - sp.parse_time(started) > job.spec.resources.walltime

    def _oom_killed(self, status: dict[str, Any]) -> bool:
        cid = status.get("ContainerStatus", {}).get("ContainerID")
        try:
            return bool(cid) and bool(self.client().api.inspect_container(cid)["State"].get("OOMKilled"))
        except Exception:  # the container may be gone with its node; the exit code still stands
            return False

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        services = self._services()
        tasks = self._tasks()
        out = {}
        for job in jobs:
            service = services.get(job.id)
            if service is None:
                continue
            task = sp.latest_task(tasks.get(service.id, []))
            info = self._task_status(job, service, task)
            out[job.id] = info
            if info.state.final and task is not None:
                self._maybe_cleanup(service, task)
        return out

    def reports(self, jobs: Sequence[JobRecord]) -> dict[str, dict[str, Any]]:
        """What ran, from the engine (``SupportsReports``; no wrapper report on Swarm)."""
        services, tasks = self._services(), self._tasks()
        found = {}
        for job in jobs:
            service = services.get(job.id)
            task = sp.latest_task(tasks.get(service.id, [])) if service is not None else None
            if task is not None:
                found[job.id] = task_report(self.client(), job, task)
        return found

    def _maybe_cleanup(self, service: Any, task: dict[str, Any]) -> None:
        ended = sp.parse_time(task["Status"]["Timestamp"])
        if time.time() - ended >= self.settings.keep_finished:
            log.info("removing finished service %s", service.name)
            service.remove()

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """Stop the jobs still active: remove the service, then stop its containers (SIGTERM,
        SIGKILL after ``stop_grace``). A job that already ended keeps its service (for logs
        and outputs) and is answered with how it ended.

        Removing a ``replicated-job`` service does not stop its running task on Docker
        20.10 (measured: the container ran to its end), so the containers labelled with
        the job's id are stopped through the engine API as well (the nodes this API reaches).
        A job is answered ``CANCELLED`` once its service is gone and none of its containers runs.
        """
        answers, todo = split_ended(jobs, self.status(jobs))
        services = self._services()
        victims: dict[str, list[Any]] = {}
        for job in todo:
            containers = self._running_containers(job.id)
            if job.id not in services and not containers:
                answers[job.id] = not_found(job, self.name)
                continue
            if job.id in services:
                self._remove(services[job.id])
            victims[job.id] = containers
        self._stop([c for found in victims.values() for c in found])
        answers.update({i: stopped() for i in victims if not self._running_containers(i)})
        return answers

    def _running_containers(self, job_id: str) -> list[Any]:
        """The running containers of a job (any task, on the nodes this API reaches)."""
        try:
            found: list[Any] = self.client().containers.list(filters={"label": f"{sp.LABEL_ID}={job_id}"})
        except Exception as exc:
            raise _unavailable(exc) from exc
        return found

    def _remove(self, service: Any) -> None:
        try:
            service.remove()
        except docker.errors.NotFound:
            return  # gone already (another client, or keep_finished)
        except docker.errors.APIError as exc:
            raise status_failure(exc.status_code or 500, _api_message(exc), backend=self.name) from exc
        except Exception as exc:  # the connection failed or the reply was lost
            raise transport_failure(exc, "removing the service", backend=self.name, hint=HINT) from exc

    def _stop(self, victims: list[Any]) -> None:
        for container in victims:
            with contextlib.suppress(docker.errors.APIError):
                container.kill(signal="SIGTERM")
        deadline = time.monotonic() + self.settings.stop_grace
        for container in victims:
            try:
                container.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # read timeout (requests) or API error: still running
                with contextlib.suppress(Exception):
                    container.kill()
                    container.wait(timeout=5)

    # -- results ----------------------------------------------------------------
    def _service(self, job: JobRecord) -> Any:
        service = self._services().get(job.id)
        if service is None:
            raise BackendError(
                f"the service of job {job.id} is gone (cancelled, or removed after keep_finished)",
                backend=self.name,
            )
        return service

    def _stream(self, service: Any, *, stdout: bool, stderr: bool) -> str:
        """Service logs with both streams in time order (the API interleaves them loosely)."""
        raw = b"".join(service.logs(stdout=stdout, stderr=stderr, timestamps=True))
        lines = raw.decode(errors="replace").splitlines(keepends=True)
        stamped = [ln.partition(" ") for ln in lines]
        return "".join(text for _, _, text in sorted(stamped, key=lambda p: p[0]))

    def logs(self, job: JobRecord) -> str:
        return self._stream(self._service(job), stdout=True, stderr=True)

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        service = self._service(job)
        dest.mkdir(parents=True, exist_ok=True)
        if self.settings.bind_workdir:
            fetched = collect_outputs(job_workdir(job, self.ctx.jobs_dir), job.spec.outputs, dest)
        else:
            fetched = self._copy_outputs(job, service, dest)
        for stream in ("stdout", "stderr"):
            (dest / stream).write_text(
                self._stream(service, stdout=stream == "stdout", stderr=stream == "stderr")
            )
            fetched.append(dest / stream)
        return fetched

    def _copy_outputs(self, job: JobRecord, service: Any, dest: Path) -> list[Path]:
        """``docker cp``: the work directory of the task's (stopped) container, then the globs."""
        task = sp.latest_task(self._tasks().get(service.id, []))
        cid = (task or {}).get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
        if not cid:
            raise BackendError(f"job {job.id} has no container to copy outputs from", backend=self.name)
        stream, _ = self.client().api.get_archive(cid, sp.WORKDIR + "/.")
        with tempfile.TemporaryDirectory(prefix="cops-swarm-") as tmp:
            safe_extract(io.BytesIO(b"".join(stream)), Path(tmp))
            return collect_outputs(Path(tmp), job.spec.outputs, dest)

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        reserve, gpu = self.settings.reserve, self.settings.gpu_resource
        lines = [
            f"# {j.id} {j.name}\n"
            + sp.cli_equivalent(j, engine_name(j.spec.image), reserve=reserve, gpu_resource=gpu)
            for j in jobs
        ]
        return "\n".join(lines) + "\n"

    def check(self) -> Health:
        try:
            info = self.client().info()
        except Exception as exc:
            return Health(False, str(_unavailable(exc)))
        swarm = info.get("Swarm", {})
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            return Health(False, "the engine is not a swarm manager (`docker swarm init`)")
        return Health(True, f"swarm of {swarm.get('Nodes', 0)} node(s), engine {info.get('ServerVersion')}")


def safe_extract(fileobj: io.BytesIO, target: Path) -> None:
    """Extract regular files and directories only, never outside ``target``."""
    root = target.resolve()
    with tarfile.open(fileobj=fileobj, mode="r") as tar:
        for member in tar.getmembers():
            path = (root / member.name).resolve()
            if not path.is_relative_to(root) or not (member.isfile() or member.isdir()):
                log.warning("skipping archive member %s: not a plain file inside the work dir", member.name)
                continue
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is not None:
                path.write_bytes(source.read())


def _api_message(exc: Any) -> str:
    return str(getattr(exc, "explanation", None) or exc)


def _unavailable(exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(f"Docker engine API failed: {_api_message(exc)}", backend="swarm", hint=HINT)
