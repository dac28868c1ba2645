from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.backends.arc.backend import ArcBackend, ArcSettings
from computeops_grid.backends.base import BackendContext
from tests.services.arc import CERTS, ArcCE
from tests.services.grid_jobs import IMAGE_ROOTS, pilot_file

# `slurm_cluster`, `grid_images`, `arc_ce` and `good_proxy` are session fixtures of
# tests/conftest.py: one Slurm and one A-REX per pytest session for every test directory.


@pytest.fixture(scope="session")
def images(grid_images: Path) -> Path:
    return grid_images


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
        ),
        context,
    )


@pytest.fixture
def arc(arc_ce: ArcCE, good_proxy: Path, tmp_path: Path) -> ArcBackend:
    return make_arc(arc_ce.url, good_proxy, tmp_path)
