"""Shared fixtures: an isolated cops-grid home, the default image, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from computeops_grid.images.default import ensure_default_image

if TYPE_CHECKING:
    from computeops_grid.bench.daemons import PrivateDockerd
    from tests.services.arc import ArcCE
    from tests.services.diracx import DiracXServer
    from tests.services.htcondor import HTCondorCE
    from tests.services.podman_kube import PodmanKube
    from tests.services.slurm import SlurmCluster

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "etc" / "examples"


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local image repository with the embedded busybox image (built once)."""
    root = tmp_path_factory.mktemp("images")
    ensure_default_image(root)
    return root


@pytest.fixture
def cops_home(tmp_path: Path, image_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """COPS_GRID_HOME in a temp dir: store, config and job dirs of this test only."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(f"image_root: {image_root}\nbackends:\n  local:\n    max_parallel: 2\n")
    monkeypatch.setenv("COPS_GRID_HOME", str(home))
    monkeypatch.delenv("COPS_GRID_CONFIG", raising=False)
    return home


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


class Cli:
    """Runs the real ``cops-grid`` console entry point in a subprocess."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", "from computeops_grid.cli.main import run; run()", *args]

    def __call__(self, *args: str, timeout: float = 120, cwd: Path | None = None) -> CliResult:
        proc = subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
            env={**os.environ, "COPS_GRID_HOME": str(self.home), "COLUMNS": "200"},
        )  # fmt: skip
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(cops_home: Path) -> Cli:
    return Cli(cops_home)


# -- real grid services, started once per pytest session for every test directory ---------


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A single-node Slurm (munged + slurmctld + slurmd) on loopback, with accounting
    (slurmdbd on a private MariaDB), so ``sacct`` answers for jobs slurmctld forgot."""
    from tests.services.slurm import start_slurm

    cluster = start_slurm(accounting=True)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def grid_images() -> Iterator[Path]:
    """A world-readable image repository (grid jobs may run as ``nobody``)."""
    import shutil

    from tests.services.grid_jobs import image_root as make_image_root

    root = make_image_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def arc_ce(slurm_cluster: SlurmCluster, grid_images: Path) -> Iterator[ArcCE]:
    """A-REX 6 (REST) on the session's Slurm, with a test CA and the fake VO ``cops.test``."""
    from tests.services.arc import start_arc
    from tests.services.grid_jobs import IMAGE_ROOTS

    IMAGE_ROOTS[:] = [grid_images]
    ce = start_arc(slurm_cluster)
    yield ce
    ce.stop()


@pytest.fixture(scope="session")
def good_proxy(arc_ce: ArcCE) -> Path:
    """A 24 h VOMS proxy of VO ``cops.test`` (0600), accepted by ``arc_ce``."""
    return arc_ce.proxy("good")


@pytest.fixture(scope="session")
def apptainer_bin() -> Path:
    """A directory holding ``apptainer`` and ``singularity``: Debian sid's Apptainer 1.4, run
    from its cached root (scripts/debian-roots.sh; built on first use) with host paths bound at
    the same path. Put it on PATH and the wrapper calls it as a worker node's Apptainer."""
    from tests.services.debian_roots import build

    return build("apptainer-bin")


@pytest.fixture(scope="session")
def diracx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiracXServer]:
    """A real DiracX 0.7.0 server on 127.0.0.1 (SQLite DBs, moto S3), started once."""
    from tests.services.diracx import DiracXServer

    server = DiracXServer(tmp_path_factory.mktemp("diracx")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def alice(diracx_server: DiracXServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DiracX user's credentials file (a real token from the server's legacy exchange)."""
    return diracx_server.write_credentials(tmp_path_factory.mktemp("alice") / "credentials.json")


@pytest.fixture(scope="session")
def swarm_daemon() -> Iterator[PrivateDockerd]:
    """One private dockerd, initialised as a one-node swarm, for the whole session."""
    from tests.services.dockerd import private_dockerd

    with private_dockerd(swarm=True) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def htcondor_ce() -> Iterator[HTCondorCE]:
    """A real HTCondor-CE on loopback (Debian trixie's HTCondor 23.9: CE collector, schedd and
    JobRouter, a pool behind it; SciTokens from its own issuer), started once per session."""
    from tests.services.htcondor import start_htcondor_ce

    ce = start_htcondor_ce()
    yield ce
    ce.stop()


@pytest.fixture
def slurm_settings(slurm_cluster: SlurmCluster) -> dict[str, Any]:
    """``backends.slurm:`` for the session's Slurm (job dirs under ``$COPS_GRID_HOME/jobs``)."""
    return {"slurm_conf": str(slurm_cluster.conf)}


@pytest.fixture
def arc_settings(arc_ce: ArcCE, good_proxy: Path, grid_images: Path) -> dict[str, Any]:
    """``backends.arc:`` for the session's A-REX, with the good proxy and the VO it must carry."""
    from tests.services.arc import CERTS, VO

    return {
        "ce": arc_ce.url,
        "proxy": str(good_proxy),
        "ca_dir": str(CERTS),
        "queue": "debug",
        "vo": VO,
        "image_root": str(grid_images),
    }


def configure_backend(home: Path, name: str, settings: dict[str, Any]) -> None:
    """Add ``backends.<name>`` to ``$COPS_GRID_HOME/config.yaml``."""
    import yaml

    config = home / "config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("backends", {})[name] = settings
    config.write_text(yaml.safe_dump(data))


@pytest.fixture(scope="session")
def kube_play(image_root: Path) -> Iterator[PodmanKube]:
    """podman with the busybox image of the local repository as ``busybox:latest``, for
    ``podman kube play`` of the pod templates of our Kubernetes Jobs (tests/kubernetes, contract)."""
    import shutil

    from tests.services.podman_kube import podman_kube

    kube = podman_kube(image_root / "registry.hub.docker.com/library/busybox:latest", "busybox:latest")
    yield kube
    kube.stop()
    shutil.rmtree(kube.root, ignore_errors=True)
