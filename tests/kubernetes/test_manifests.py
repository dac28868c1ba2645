"""Job manifests built with the official client's models, validated by it, and their pod
templates run for real by ``podman kube play`` (no Kubernetes API server can run here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from computeops_grid.backends.kubernetes import manifest as km
from computeops_grid.errors import CredentialError
from tests.conftest import EXAMPLES
from tests.kubernetes.conftest import make_backend
from tests.services.podman_kube import PodmanKube
from tests.swarm.helpers import hello, records


def manifests(tmp_path: Path, spec: dict[str, Any], **settings: object) -> list[dict[str, Any]]:
    backend = make_backend(tmp_path, **settings)
    docs = list(yaml.safe_load_all(backend.describe(records(spec, "kubernetes"))))
    for doc in docs:  # every document deserializes into the client's own model
        km.from_dict(doc, f"V1{doc['kind']}")
    return docs


def test_hello_manifest_is_a_valid_job(tmp_path: Path) -> None:
    (job,) = manifests(tmp_path, yaml.safe_load((EXAMPLES / "hello.yaml").read_text()))
    model = km.from_dict(job)
    assert (model.api_version, model.kind) == ("batch/v1", "Job")
    assert model.spec.backoff_limit == 0
    assert model.spec.ttl_seconds_after_finished == 3600
    assert model.spec.active_deadline_seconds == 600
    pod = model.spec.template.spec
    assert pod.restart_policy == "Never"
    (main,) = pod.containers
    assert main.image == "busybox:latest"
    assert main.command == ["sh"]
    assert main.resources.limits == {"cpu": "1", "memory": str(512 * 2**20)}
    assert main.resources.requests == main.resources.limits
    assert {v.name: v.host_path.path for v in pod.volumes if v.host_path} == {"cvmfs": "/cvmfs"}


def test_hello_pod_template_runs_under_podman_kube_play(tmp_path: Path, kube_play: PodmanKube) -> None:
    (job,) = manifests(tmp_path, yaml.safe_load((EXAMPLES / "hello.yaml").read_text()), cvmfs="none")
    result = kube_play.play(km.pod_of(job, expand=True))
    assert (result.exit_code, result.state) == (0, "exited")
    assert result.logs == "Hello from Linux in a container, job hello\n"


def test_exit_code_and_dollar_signs_reach_the_container_verbatim(
    tmp_path: Path, kube_play: PodmanKube
) -> None:
    script = "echo A=$A P=$(echo sub) L='$(A)' D=$$ | sed 's/D=[0-9]*/D=pid/'; exit 3"
    (job,) = manifests(tmp_path, hello(arguments=["-c", script], environment={"A": "x"}), cvmfs="none")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][1] == script.replace("$", "$$")
    result = kube_play.play(km.pod_of(job, expand=True))
    assert result.exit_code == 3
    assert result.logs == "A=x P=sub L=$(A) D=pid\n"


def test_memory_limit_is_enforced(tmp_path: Path, kube_play: PodmanKube) -> None:
    script = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"
    spec = hello(arguments=["-c", script], resources={"memory": "16MiB"})
    (job,) = manifests(tmp_path, spec, cvmfs="none")
    result = kube_play.play(km.pod_of(job, expand=True))
    assert result.exit_code == 137
    assert "survived" not in result.logs


def test_one_payload_bulk_is_one_indexed_job(tmp_path: Path, kube_play: PodmanKube) -> None:
    spec = hello(name="b-${k}", arguments=["-c", "echo element $JOB_COMPLETION_INDEX"],
                 parameters={"k": [1, 2, 3]})  # fmt: skip
    (job,) = manifests(tmp_path, spec, cvmfs="none", parallelism=2)
    assert job["spec"]["completionMode"] == "Indexed"
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (3, 2)
    assert job["spec"]["backoffLimitPerIndex"] == 0
    assert "backoffLimit" not in job["spec"]
    assert len(json.loads(job["metadata"]["annotations"][km.ANNOT_IDS])) == 3
    for index in range(3):
        result = kube_play.play(km.pod_of(job, index, expand=True))
        assert (result.exit_code, result.logs) == (0, f"element {index}\n")


def test_parametric_job_with_different_args_is_one_job_per_element(tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "parametric.yaml").read_text())
    jobs = manifests(tmp_path, spec)
    assert len(jobs) == 10
    assert all("completionMode" not in j["spec"] for j in jobs)
    assert len({j["metadata"]["labels"][km.LABEL_BULK] for j in jobs}) == 1


def test_gpus_and_cvmfs_through_the_csi_driver(tmp_path: Path) -> None:
    (job,) = manifests(tmp_path, hello(resources={"gpus": 2}), cvmfs="csi", cvmfs_pvc="cvmfs-pvc")
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["requests"]
    (cvmfs,) = [v for v in pod["volumes"] if v["name"] == "cvmfs"]
    assert cvmfs["persistentVolumeClaim"] == {"claimName": "cvmfs-pvc", "readOnly": True}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "cvmfs"]
    assert mount == {
        "mountPath": "/cvmfs",
        "mountPropagation": "HostToContainer",
        "name": "cvmfs",
        "readOnly": True,
    }


def test_credentials_become_a_secret_never_printed(tmp_path: Path) -> None:
    proxy = tmp_path / "x509up"
    proxy.write_text("-----BEGIN CERTIFICATE-----\nsecret\n")
    os.chmod(proxy, 0o600)
    creds = [{"file": str(proxy), "env": "X509_USER_PROXY"}]
    secret, job = manifests(tmp_path, hello(), credentials=creds)
    assert secret["kind"] == "Secret"
    assert secret["data"] == {"cred-0": "<redacted>"}
    pod = job["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "credentials"]
    assert vol["secret"] == {"defaultMode": 0o400, "secretName": secret["metadata"]["name"]}
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["X509_USER_PROXY"] == f"{km.CRED_DIR}/cred-0"
    real = km.to_dict(
        km.build_secret(records(hello(), "kubernetes")[0], make_backend(tmp_path, credentials=creds).settings)
    )
    assert real["data"]["cred-0"] != "<redacted>"
    os.chmod(proxy, 0o644)
    with pytest.raises(CredentialError, match="readable by others"):
        manifests(tmp_path, hello(), credentials=creds)


def test_kubelet_expansion_rule() -> None:
    env = {"A": "1"}
    assert km.kubelet_expand(km.escape("$(A) $$ $A $(B"), env) == "$(A) $$ $A $(B"
    assert km.kubelet_expand("$(A)-$(B)-$$(A)", env) == "1-$(B)-$(A)"
