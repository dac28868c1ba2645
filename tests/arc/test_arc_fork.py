"""The ARC backend on an A-REX with the fork LRMS (jobs run as ``nobody`` on this machine).

Issue 7 asks for the fork LRMS first, then Slurm (``test_arc_transports.py``). Same job
file and checks through both transports; fork jobs sit 10-20 s in EXITINGLRMS (the
packaged fork scanner sleeps), so this module is slower per job than the Slurm one.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.backends.arc.backend import ArcBackend, ArcSettings
from computeops_grid.backends.base import BackendContext
from tests.arc.test_arc_transports import TRANSPORTS, hello_and_42
from tests.services.arc import CERTS, ArcCE, start_arc
from tests.services.grid_jobs import IMAGE_ROOTS, pilot_file

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("arcsub") is None, reason="ARC client tools not installed"),
]


@pytest.fixture(scope="module")
def fork_ce(grid_images: Path) -> Iterator[ArcCE]:
    IMAGE_ROOTS[:] = [grid_images]
    ce = start_arc(None)
    yield ce
    ce.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fork_lrms_hello_outputs_and_exit_code_42(fork_ce: ArcCE, tmp_path: Path, transport: str) -> None:
    assert fork_ce.queue == "fork"
    context = BackendContext(home=tmp_path, jobs_dir=tmp_path, image_root=tmp_path, pilot=pilot_file())
    settings = ArcSettings(
        ce=fork_ce.url, proxy=str(fork_ce.proxy("good")), ca_dir=str(CERTS), queue=fork_ce.queue,
        image_root=str(IMAGE_ROOTS[0]), transport=transport,
    )  # fmt: skip
    hello_and_42(ArcBackend(settings, context), tmp_path)
