from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.kubernetes.backend import KubernetesBackend, KubernetesSettings
from tests.services.podman_kube import PodmanKube, podman_kube


@pytest.fixture(scope="session")
def kube_play(image_root: Path) -> Iterator[PodmanKube]:
    """podman with the busybox image of the local repository as ``busybox:latest``."""
    kube = podman_kube(image_root / "registry.hub.docker.com/library/busybox:latest", "busybox:latest")
    yield kube
    kube.stop()
    shutil.rmtree(kube.root, ignore_errors=True)


def make_backend(tmp_path: Path, **settings: object) -> KubernetesBackend:
    context = BackendContext(
        home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=tmp_path, pilot=worker.pilot()
    )
    return KubernetesBackend(KubernetesSettings.model_validate(settings), context)
