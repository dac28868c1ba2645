"""examples/cops-grid.ipynb runs, every cell, in a real Jupyter kernel (nbclient) on the local
backend and the session's real Slurm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from computeops_grid import Client
from tests.conftest import ROOT, configure_backend

pytestmark = [pytest.mark.service, pytest.mark.slow]
NOTEBOOK = ROOT / "examples" / "cops-grid.ipynb"


def test_the_example_notebook_runs_its_parametric_job_on_local_and_slurm(
    cops_home: Path, slurm_settings: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    configure_backend(cops_home, "slurm", slurm_settings)
    monkeypatch.setenv("COPS_GRID_EXAMPLE_RESOURCES", "local slurm")  # the kernel inherits the environment
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core warns without it (warnings are errors)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    runner = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    runner.execute()  # raises CellExecutionError, naming the cell, when a cell fails
    ran = sorted((job["backend"], job["name"], job["state"]) for job in Client(cops_home).jobs())
    assert ran == [
        (backend, f"square-{x}", "completed") for backend in ("local", "slurm") for x in (1, 2, 3, 4)
    ]
    squares = notebook.cells[4].outputs[-1]["data"]["text/plain"]
    assert "('slurm', 4): 16" in squares
    what_ran = notebook.cells[-1].outputs[-1]["data"]["text/plain"]
    assert "'slurm'" in what_ran
    assert "sha256:" in what_ran
