from __future__ import annotations

from pathlib import Path

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.kubernetes.backend import KubernetesBackend, KubernetesSettings

# `kube_play` (podman kube play with the busybox image, for the session) is in tests/conftest.py


def make_backend(tmp_path: Path, **settings: object) -> KubernetesBackend:
    context = BackendContext(
        home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=tmp_path, pilot=worker.pilot()
    )
    return KubernetesBackend(KubernetesSettings.model_validate(settings), context)
