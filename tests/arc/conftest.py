from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.backends.arc import ArcBackend, ArcSettings
from computeops_grid.backends.base import BackendContext
from tests.services.arc import CERTS, ArcCE, start_arc
from tests.services.grid_jobs import IMAGE_ROOTS, image_root, pilot_file
from tests.services.slurm import SlurmCluster, start_slurm


@pytest.fixture(scope="session")
def arc_slurm() -> Iterator[SlurmCluster]:
    cluster = start_slurm()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def arc_ce(arc_slurm: SlurmCluster, images: Path) -> Iterator[ArcCE]:
    IMAGE_ROOTS[:] = [images]
    ce = start_arc(arc_slurm)
    yield ce
    ce.stop()


@pytest.fixture(scope="session")
def images() -> Iterator[Path]:
    import shutil

    root = image_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def good_proxy(arc_ce: ArcCE) -> Path:
    return arc_ce.proxy("good")


def make_arc(ce: str, proxy: Path, tmp_path: Path, **settings: object) -> ArcBackend:
    context = BackendContext(
        home=tmp_path, jobs_dir=tmp_path, image_root=tmp_path / "images", pilot=pilot_file()
    )
    return ArcBackend(
        ArcSettings(
            ce=ce,
            proxy=str(proxy),
            ca_dir=str(CERTS),
            queue="debug",
            image_root=str(IMAGE_ROOTS[0]),
            **settings,
        ),  # type: ignore[arg-type]
        context,
    )


@pytest.fixture
def arc(arc_ce: ArcCE, good_proxy: Path, tmp_path: Path) -> ArcBackend:
    return make_arc(arc_ce.url, good_proxy, tmp_path)
