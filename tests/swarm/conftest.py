from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.swarm.backend import SwarmBackend, SwarmSettings
from computeops_grid.bench.daemons import PrivateDockerd

# `swarm_daemon` (one private dockerd, a one-node swarm, for the session) is in tests/conftest.py


def make_backend(
    daemon: PrivateDockerd, tmp_path: Path, image_root: Path, **settings: object
) -> SwarmBackend:
    context = BackendContext(
        home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=image_root, pilot=worker.pilot()
    )
    return SwarmBackend(SwarmSettings.model_validate({"docker_host": daemon.host, **settings}), context)


@pytest.fixture
def swarm(swarm_daemon: PrivateDockerd, tmp_path: Path, image_root: Path) -> Iterator[SwarmBackend]:
    backend = make_backend(swarm_daemon, tmp_path, image_root)
    yield backend
    for service in backend.client().services.list(filters={"label": "org.cops-grid.id"}):
        service.remove()  # type: ignore[no-untyped-call]  # docker SDK has no annotations
    backend.close()
