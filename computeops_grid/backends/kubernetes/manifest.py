"""A cops-grid job as a Kubernetes ``batch/v1`` Job, built with the official client's models.

How a job maps (the image *is* the container, so no pilot wrapper runs inside):

* container ``main`` runs ``command: [command]`` and ``args: arguments`` (no shell; note
  that Kubernetes expands ``$(VAR)`` in them), the job's environment, in ``/cops-job``
  (an ``emptyDir``); the job's exit code is ``main``'s exit code;
* ``backoffLimit: 0`` and ``restartPolicy: Never`` (never retried), ``activeDeadlineSeconds``
  = walltime, ``ttlSecondsAfterFinished`` for cleanup;
* cores/memory as requests = limits, GPUs as ``nvidia.com/gpu`` limits;
* CVMFS at ``/cvmfs`` from a ``hostPath`` (nodes run the CVMFS client) or from a PVC of the
  CVMFS CSI driver's storage class (``mountPropagation: HostToContainer``), or not at all;
* credentials (proxy, token) as a Secret mounted read-only (0400) with env vars pointing to it;
* a bulk whose elements run the same argv and environment becomes one Indexed Job
  (``completionMode: Indexed``, ``backoffLimitPerIndex: 0``); element ``i`` is completion
  index ``i`` (``JOB_COMPLETION_INDEX``). Elements that differ become one Job each.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kubernetes import client as k8s
from pydantic import BaseModel, ConfigDict, Field

from computeops_grid.backends.base import BackendSettings
from computeops_grid.backends.common.docker_image import engine_name
from computeops_grid.errors import CredentialError
from computeops_grid.jobs.record import JobRecord

WORKDIR = "/cops-job"
CRED_DIR = "/etc/cops-grid/credentials"
LABEL_ID = "cops-grid.org/id"
LABEL_BULK = "cops-grid.org/bulk"
LABEL_MANAGED = "cops-grid.org/managed"
ANNOT_NAME = "cops-grid.org/name"
ANNOT_IDS = "cops-grid.org/ids"  # JSON list: completion index -> cops-grid id


class Credential(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str = Field(description="file on this machine (proxy, token), put into the job's Secret")
    env: str = Field(description="variable set in the container to the mounted file's path")


class ManifestOptions(BackendSettings):
    """The parts of the Kubernetes backend's settings that shape manifests."""

    namespace: str = "default"
    cvmfs: Literal["hostpath", "csi", "none"] = "hostpath"
    cvmfs_host_path: str = "/cvmfs"
    cvmfs_pvc: str = Field(default="cvmfs", description="PVC bound to the CVMFS CSI storage class")
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    parallelism: int | None = Field(default=None, ge=1, description="pods of an Indexed Job at once")
    host_network: bool = False
    credentials: list[Credential] = Field(default_factory=list)


def escape(text: str) -> str:
    """Kubernetes expands ``$(VAR)`` in command/args and turns ``$$`` into ``$``: double every
    ``$`` so the container gets the job's argv verbatim, as on every other backend."""
    return text.replace("$", "$$")


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet does to command/args (``$$`` -> ``$``; ``$(VAR)`` -> value if defined).

    Mirrors Kubernetes' ``third_party/forked/golang/expansion``; used to hand pod templates
    to consumers that do not implement it (``podman kube play`` 4.3 passes args verbatim).
    """
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            end = text.find(")", i + 2) if nxt == "(" else -1
            if end != -1:
                name = text[i + 2 : end]
                out.append(env.get(name, text[i : end + 1]))
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def job_name(first: JobRecord) -> str:
    """DNS-1123 name embedding the cops-grid id (of the first element for an Indexed Job)."""
    return f"cops-{first.id}"


def secret_name(first: JobRecord) -> str:
    return f"{job_name(first)}-cred"


def same_payload(jobs: Sequence[JobRecord]) -> bool:
    """True when all elements run the same argv and environment (one Indexed Job)."""
    first = jobs[0].spec
    return all(
        (j.spec.command, j.spec.arguments, j.spec.environment, j.spec.image, j.spec.resources)
        == (first.command, first.arguments, first.environment, first.image, first.resources)
        for j in jobs
    )


def group_jobs(jobs: Sequence[JobRecord]) -> list[list[JobRecord]]:
    """Bulk elements with one payload -> one group (Indexed Job); anything else alone."""
    bulks: dict[str, list[JobRecord]] = {}
    groups: list[list[JobRecord]] = []
    for job in jobs:
        if job.bulk_id is None:
            groups.append([job])
        else:
            bulks.setdefault(job.bulk_id, []).append(job)
    for members in bulks.values():
        groups.extend([members] if len(members) > 1 and same_payload(members) else [[m] for m in members])
    return groups


def _resources(job: JobRecord) -> Any:
    res = job.spec.resources
    values = {"cpu": str(res.cores), "memory": str(res.memory)}
    limits = dict(values)
    if res.gpus:
        limits["nvidia.com/gpu"] = str(res.gpus)
    return k8s.V1ResourceRequirements(requests=values, limits=limits)


def _volumes(opts: ManifestOptions, first: JobRecord) -> tuple[list[Any], list[Any], list[Any]]:
    volumes = [k8s.V1Volume(name="work", empty_dir=k8s.V1EmptyDirVolumeSource())]
    mounts = [k8s.V1VolumeMount(name="work", mount_path=WORKDIR)]
    env = []
    if opts.cvmfs == "hostpath":
        source = k8s.V1HostPathVolumeSource(path=opts.cvmfs_host_path, type="Directory")
        volumes.append(k8s.V1Volume(name="cvmfs", host_path=source))
    elif opts.cvmfs == "csi":
        claim = k8s.V1PersistentVolumeClaimVolumeSource(claim_name=opts.cvmfs_pvc, read_only=True)
        volumes.append(k8s.V1Volume(name="cvmfs", persistent_volume_claim=claim))
    if opts.cvmfs != "none":
        propagation = "HostToContainer" if opts.cvmfs == "csi" else None
        mounts.append(
            k8s.V1VolumeMount(
                name="cvmfs", mount_path="/cvmfs", read_only=True, mount_propagation=propagation
            )
        )
    if opts.credentials:
        secret = k8s.V1SecretVolumeSource(secret_name=secret_name(first), default_mode=0o400)
        volumes.append(k8s.V1Volume(name="credentials", secret=secret))
        mounts.append(k8s.V1VolumeMount(name="credentials", mount_path=CRED_DIR, read_only=True))
        env = [k8s.V1EnvVar(name=c.env, value=f"{CRED_DIR}/cred-{i}") for i, c in enumerate(opts.credentials)]
    return volumes, mounts, env


def build_job(group: Sequence[JobRecord], opts: ManifestOptions) -> Any:
    """The ``V1Job`` of one job, or of a bulk group as an Indexed Job."""
    first = group[0]
    spec = first.spec
    volumes, mounts, cred_env = _volumes(opts, first)
    env = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(spec.environment.items())] + cred_env
    container = k8s.V1Container(
        name="main", image=engine_name(spec.image), image_pull_policy=opts.image_pull_policy,
        command=[escape(spec.command)], args=[escape(a) for a in spec.arguments] or None, env=env or None,
        working_dir=WORKDIR, resources=_resources(first), volume_mounts=mounts,
    )  # fmt: skip
    labels = {LABEL_MANAGED: "true", LABEL_ID: first.id}
    if first.bulk_id:
        labels[LABEL_BULK] = first.bulk_id
    annotations = {ANNOT_NAME: first.name, ANNOT_IDS: json.dumps([j.id for j in group])}
    pod = k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=labels),
        spec=k8s.V1PodSpec(
            restart_policy="Never", containers=[container], volumes=volumes,
            host_network=opts.host_network or None,
        ),
    )  # fmt: skip
    job_spec = k8s.V1JobSpec(
        template=pod, ttl_seconds_after_finished=opts.ttl_seconds_after_finished,
        active_deadline_seconds=spec.resources.walltime,
    )  # fmt: skip
    if len(group) > 1:
        job_spec.completion_mode = "Indexed"
        job_spec.completions = len(group)
        job_spec.parallelism = min(opts.parallelism or len(group), len(group))
        job_spec.backoff_limit_per_index = 0  # one failed element does not fail the others
    else:
        job_spec.backoff_limit = 0
    meta = k8s.V1ObjectMeta(
        name=job_name(first), namespace=opts.namespace, labels=labels, annotations=annotations
    )
    return k8s.V1Job(api_version="batch/v1", kind="Job", metadata=meta, spec=job_spec)


def to_dict(obj: Any) -> dict[str, Any]:
    """camelCase manifest, ``None`` fields dropped (what ``kubectl apply`` would send)."""
    data: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(obj)
    return data


@dataclass(frozen=True)
class _Response:
    """What ``ApiClient.deserialize`` reads before kubernetes 37: an object with ``.data``."""

    data: str


def from_dict(data: dict[str, Any], kind: str = "V1Job") -> Any:
    """Validate a manifest by deserializing it into the client's model (raises on bad fields)."""
    client = k8s.ApiClient()
    text = json.dumps(data)
    if len(inspect.signature(client.deserialize).parameters) >= 3:  # kubernetes >= 37
        return client.deserialize(text, kind, "application/json")
    return client.deserialize(_Response(text), kind)


def pod_of(job: dict[str, Any], index: int | None = None, *, expand: bool = False) -> dict[str, Any]:
    """The Pod the Job controller would create (``kube play`` does not accept ``kind: Job``).

    ``expand`` applies the kubelet's ``$(VAR)``/``$$`` expansion to command and args.
    """
    template = job["spec"]["template"]
    meta = dict(template.get("metadata", {}))
    name = job["metadata"]["name"] if index is None else f"{job['metadata']['name']}-{index}"
    spec = dict(template["spec"])
    main = dict(spec["containers"][0])
    if index is not None:
        main["env"] = [*main.get("env", []), {"name": "JOB_COMPLETION_INDEX", "value": str(index)}]
    if expand:
        env = {e["name"]: e.get("value", "") for e in main.get("env", [])}
        for key in ("command", "args"):
            if key in main:
                main[key] = [kubelet_expand(a, env) for a in main[key]]
    spec["containers"] = [main, *spec["containers"][1:]]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "name": name}, "spec": spec}


def build_secret(first: JobRecord, opts: ManifestOptions, *, redact: bool = False) -> Any:
    """The Secret holding the job's credential files (owner-only files required)."""
    data = {}
    for i, cred in enumerate(opts.credentials):
        try:
            mode = os.stat(cred.file).st_mode & 0o777
            raw = b"" if redact else Path(cred.file).read_bytes()
        except OSError as exc:
            raise CredentialError(f"credential file {cred.file}: {exc.strerror}") from exc
        if mode & 0o077:
            raise CredentialError(
                f"credential file {cred.file} is readable by others (mode {mode:o})",
                hint=f"chmod 600 {cred.file}",
            )
        data[f"cred-{i}"] = "<redacted>" if redact else base64.b64encode(raw).decode()
    meta = k8s.V1ObjectMeta(name=secret_name(first), namespace=opts.namespace, labels={LABEL_MANAGED: "true"})
    return k8s.V1Secret(api_version="v1", kind="Secret", metadata=meta, type="Opaque", data=data)
