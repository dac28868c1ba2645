"""Rig fixtures for the fault matrix: one per backend, each started only when its tests run.

The services are the session's (tests/conftest.py): Slurm with accounting, A-REX on it,
DiracX, the private one-node swarm.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.backends.common.docker_image import ensure_engine_image
from computeops_grid.bench.daemons import PrivateDockerd, SlurmCluster
from tests.faults.rigs import ArcCliRig, ArcRestRig, DiracXRig, LocalRig, Rig, SlurmRig, SwarmRig
from tests.services.arc import ArcCE
from tests.services.diracx import DiracXServer


@pytest.fixture
def rig_local(tmp_path: Path, cops_home: Path) -> Rig:
    return LocalRig(tmp_path, cops_home)


@pytest.fixture
def rig_slurm(tmp_path: Path, slurm_cluster: SlurmCluster) -> Rig:
    return SlurmRig(tmp_path, slurm_cluster)


@pytest.fixture
def rig_arc_rest(tmp_path: Path, arc_ce: ArcCE, good_proxy: Path, grid_images: Path) -> Rig:
    return ArcRestRig(tmp_path, arc_ce, good_proxy, grid_images)


@pytest.fixture
def rig_arc_cli(tmp_path: Path, arc_ce: ArcCE, good_proxy: Path, grid_images: Path) -> Rig:
    return ArcCliRig(tmp_path, arc_ce, good_proxy, grid_images)


@pytest.fixture
def rig_diracx(tmp_path: Path, diracx_server: DiracXServer, alice: Path) -> Rig:
    return DiracXRig(tmp_path, diracx_server, alice)


@pytest.fixture(scope="session")
def swarm_image(swarm_daemon: PrivateDockerd, image_root: Path) -> str:
    """busybox in the swarm's engine, imported once, directly (never through a relay)."""
    import docker

    client = docker.DockerClient(base_url=swarm_daemon.host)
    try:
        return ensure_engine_image(client, "docker://busybox:latest", image_root)
    finally:
        client.close()


@pytest.fixture
def rig_swarm(tmp_path: Path, swarm_daemon: PrivateDockerd, swarm_image: str) -> Iterator[Rig]:
    rig = SwarmRig(tmp_path, swarm_daemon)
    yield rig
    rig.close()
