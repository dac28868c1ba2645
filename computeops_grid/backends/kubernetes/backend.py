"""The Kubernetes backend: each job (or bulk of one payload) is a ``batch/v1`` Job.

Manifests come from :mod:`computeops_grid.backends.kubernetes.manifest` (the official client's
models). Jobs are created, watched, logged and deleted with the official ``kubernetes``
client and the user's kubeconfig; nothing connects before the first real call, so
``--dry-run`` (``describe``) works without a cluster. ``native_id`` is
``<namespace>/<job name>`` or ``<namespace>/<job name>#<completion index>``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
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
from computeops_grid.backends.common.http import status_failure, transport_failure
from computeops_grid.backends.kubernetes import manifest as km
from computeops_grid.backends.kubernetes.report import pod_report
from computeops_grid.errors import BackendError
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
JOB_LABEL = "job-name"
POD_PHASES = {"Pending": JobState.QUEUED, "Running": JobState.RUNNING, "Succeeded": JobState.COMPLETED,
              "Failed": JobState.FAILED}  # fmt: skip


class KubernetesSettings(km.ManifestOptions):
    kubeconfig: str | None = Field(
        default=None, description="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    context: str | None = Field(default=None, description="kubeconfig context (default: the current one)")


class KubernetesBackend:
    """Jobs as Kubernetes Jobs labelled ``cops-grid.org/id``."""

    name: ClassVar[str] = "kubernetes"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BULK_SUBMIT, Capability.ARRAYS, Capability.CANCEL, Capability.LOGS, Capability.GPU,
         Capability.DETACHED}
    )  # fmt: skip
    Settings: ClassVar[type[BackendSettings]] = KubernetesSettings

    def __init__(self, settings: KubernetesSettings, context: BackendContext) -> None:
        self.settings = settings
        self.ctx = context
        self._api: Any = None

    # -- live API (official client; no API server can run on the test machine) ----
    def api(self) -> Any:
        if self._api is None:
            try:
                self._api = k8s_config.new_client_from_config(
                    config_file=self.settings.kubeconfig, context=self.settings.context
                )
            except (k8s_config.ConfigException, OSError) as exc:
                raise BackendError(
                    f"no usable kubeconfig: {exc}",
                    backend=self.name,
                    hint="set KUBECONFIG or backends.kubernetes.kubeconfig; `--dry-run` needs no cluster",
                ) from exc
        return self._api

    def _batch(self) -> Any:
        return k8s.BatchV1Api(self.api())

    def _core(self) -> Any:
        return k8s.CoreV1Api(self.api())

    def _call(self, fn: Any, *args: Any, accept: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """One API call; an error status in ``accept`` answers None instead of raising."""
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status in accept:
                return None
            message = f"API answered {exc.status} {exc.reason}"
            raise status_failure(exc.status or 500, message, backend=self.name) from exc
        except OSError as exc:  # urllib3 connection errors are OSErrors
            raise transport_failure(exc, "Kubernetes API", backend=self.name) from exc

    # -- submission -------------------------------------------------------------
    def _native(self, group: list[JobRecord]) -> list[str]:
        base = f"{self.settings.namespace}/{km.job_name(group[0])}"
        return [base] if len(group) == 1 else [f"{base}#{i}" for i in range(len(group))]

    def _create(self, group: list[JobRecord]) -> None:
        ns = self.settings.namespace
        if self.settings.credentials:
            secret = km.build_secret(group[0], self.settings)
            self._create_or_exists(self._core().create_namespaced_secret, ns, secret)
        self._create_or_exists(self._batch().create_namespaced_job, ns, km.build_job(group, self.settings))

    def _create_or_exists(self, fn: Any, ns: str, body: Any) -> None:
        self._call(fn, ns, body, accept=(409,))  # AlreadyExists: accepted by an interrupted submit

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        native: dict[str, SubmitResult] = {}
        for group in km.group_jobs(jobs):
            try:
                self._create(group)
            except BackendError as exc:  # each group's own answer, whatever its delivery
                native.update({j.id: SubmitResult(j.id, error=exc) for j in group})
                continue
            native.update({j.id: SubmitResult(j.id, n) for j, n in zip(group, self._native(group))})
        return [native[j.id] for j in jobs]

    def _jobs(self) -> dict[str, tuple[Any, int | None]]:
        """cops-grid id -> (Job, completion index or None), one list call."""
        listed = self._call(
            self._batch().list_namespaced_job,
            self.settings.namespace,
            label_selector=f"{km.LABEL_MANAGED}=true",
        )
        found: dict[str, tuple[Any, int | None]] = {}
        for job in listed.items:
            ids = yaml.safe_load((job.metadata.annotations or {}).get(km.ANNOT_IDS, "[]")) or []
            for index, cid in enumerate(ids):
                found[cid] = (job, index if len(ids) > 1 else None)
        return found

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        known = self._jobs()
        out: dict[str, SubmitResult | None] = {}
        for job in jobs:
            hit = known.get(job.id)
            name = f"{self.settings.namespace}/{hit[0].metadata.name}" if hit else ""
            out[job.id] = (
                SubmitResult(job.id, name if hit[1] is None else f"{name}#{hit[1]}") if hit else None
            )
        return out

    # -- following --------------------------------------------------------------
    def _pods(self) -> dict[tuple[str, int | None], Any]:
        listed = self._call(
            self._core().list_namespaced_pod,
            self.settings.namespace,
            label_selector=f"{km.LABEL_MANAGED}=true",
        )
        pods: dict[tuple[str, int | None], Any] = {}
        for pod in listed.items:
            labels = pod.metadata.labels or {}
            index = labels.get(INDEX_LABEL)
            pods[(labels.get(JOB_LABEL, ""), int(index) if index is not None else None)] = pod
        return pods

    def _element_states(self, known: dict[str, tuple[Any, int | None]]) -> dict[str, StatusInfo]:
        """The state of every cops-grid job of ``known`` (one pod list call)."""
        pods = self._pods()
        return {
            cid: pod_status(pods.get((kjob.metadata.name, index)), kjob)
            for cid, (kjob, index) in known.items()
        }

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        states = self._element_states(self._jobs())
        return {job.id: states[job.id] for job in jobs if job.id in states}

    def reports(self, jobs: Sequence[JobRecord]) -> dict[str, dict[str, Any]]:
        """What ran, from each job's pod and its node (``SupportsReports``; no wrapper here)."""
        known, pods, nodes = self._jobs(), self._pods(), {}
        found = {}
        for job in jobs:
            kjob, index = known.get(job.id, (None, None))
            pod = pods.get((kjob.metadata.name, index)) if kjob is not None else None
            if pod is None:
                continue
            name = pod.spec.node_name if pod.spec is not None else None
            if name and name not in nodes:
                try:
                    nodes[name] = self._core().read_node(name)
                except Exception as exc:  # no RBAC to read nodes: the node's name is still known
                    log.info("cannot read node %s: %s", name, exc)
                    nodes[name] = None
            found[job.id] = pod_report(job, pod, nodes.get(name) if name else None)
        return found

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """Delete the Jobs of the jobs still active (foreground: their pods go with them).

        A job that already ended keeps its Job (logs, until the TTL) and is answered as it
        ended. An Indexed Job holds several cops-grid jobs; deleting it stops all of them, so
        it is deleted only when none of its other elements is still active."""
        known = self._jobs()
        states = self._element_states(known)
        answers, todo = split_ended(jobs, states)
        answers.update({j.id: not_found(j, self.name) for j in todo if j.id not in known})
        asked = {j.id for j in todo if j.id in known}
        for name in sorted({known[i][0].metadata.name for i in asked}):
            elements = [cid for cid, (kjob, _) in known.items() if kjob.metadata.name == name]
            spared = [cid for cid in elements if cid not in asked and not states[cid].state.final]
            mine = [cid for cid in elements if cid in asked]
            if spared:
                why = f"Job {name} also runs {len(spared)} job(s) not being cancelled: cancel them together"
                answers.update({cid: StatusInfo(states[cid].state, message=why) for cid in mine})
                continue
            self._delete(name)
            answers.update({cid: stopped() for cid in mine})
        return answers

    def _delete(self, name: str) -> None:
        ns = self.settings.namespace
        body = k8s.V1DeleteOptions(propagation_policy="Foreground")
        self._call(self._batch().delete_namespaced_job, name, ns, body=body, accept=(404,))
        if self.settings.credentials:
            self._call(self._core().delete_namespaced_secret, f"{name}-cred", ns, accept=(404,))

    # -- results ----------------------------------------------------------------
    def logs(self, job: JobRecord) -> str:
        known = self._jobs()
        if job.id not in known:
            raise BackendError(f"Kubernetes Job of {job.id} is gone (TTL after finishing)", backend=self.name)
        kjob, index = known[job.id]
        pod = self._pods().get((kjob.metadata.name, index))
        if pod is None:
            return ""
        text: str = self._call(
            self._core().read_namespaced_pod_log, pod.metadata.name, self.settings.namespace, container="main"
        )
        return text

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        """The manifests ``submit`` would create (Secrets redacted), as YAML documents."""
        docs = []
        for group in km.group_jobs(jobs):
            if self.settings.credentials:
                docs.append(km.to_dict(km.build_secret(group[0], self.settings, redact=True)))
            docs.append(km.to_dict(km.build_job(group, self.settings)))
        return yaml.safe_dump_all(docs, sort_keys=False)

    def check(self) -> Health:
        try:
            version = self._call(k8s.VersionApi(self.api()).get_code)
        except BackendError as exc:
            return Health(False, exc.message)
        return Health(True, f"Kubernetes {version.git_version}, namespace {self.settings.namespace}")


def pod_status(pod: Any, kjob: Any) -> StatusInfo:
    """Job state of one element from its pod (or the Job's conditions when there is no pod)."""
    conditions = {c.type: c for c in (kjob.status.conditions or [])} if kjob.status else {}
    if pod is None:
        failed = conditions.get("Failed")
        if failed is not None and failed.status == "True":
            return StatusInfo(
                JobState.FAILED, message=f"{failed.reason}: {failed.message}", native_state="Failed"
            )
        return StatusInfo(JobState.QUEUED, message="no pod yet", native_state="NoPod")
    phase = pod.status.phase or "Pending"
    state = POD_PHASES.get(phase)
    if state is None:
        log.warning("pod phase %r is unknown: no change", phase)
        return StatusInfo(JobState.QUEUED, native_state=phase)
    main = next((c for c in (pod.status.container_statuses or []) if c.name == "main"), None)
    term = main.state.terminated if main is not None and main.state is not None else None
    if term is not None and state in (JobState.COMPLETED, JobState.FAILED):
        message = term.reason if term.reason not in (None, "Completed", "Error") else ""
        if term.reason == "OOMKilled":
            message = "killed: over its memory limit (OOMKilled)"
        return StatusInfo(state, exit_code=term.exit_code, message=message, native_state=phase)
    waiting = main.state.waiting if main is not None and main.state is not None else None
    message = (
        f"{waiting.reason}: {waiting.message or ''}" if waiting is not None else (pod.status.reason or "")
    )
    return StatusInfo(state, message=message, native_state=phase)
