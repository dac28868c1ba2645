"""The HTCondor-CE row of ``cops-grid bench orchestrators``, measured against the session's CE:
the same short jobs and probes as every other orchestrator, through the backend users get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.bench import orch_systems as osys
from computeops_grid.bench import orchestrators as orch
from tests.services.htcondor import HTCondorCE

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.root]


@pytest.mark.usefixtures("ce_token")
def test_orchestrators_row_for_the_ce(
    htcondor_ce: HTCondorCE, ce_settings: dict[str, Any], tmp_path: Path
) -> None:
    images = ce_settings["image_root"]
    ctx = BackendContext(
        home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=Path(images), pilot=worker.pilot()
    )
    absent = osys.htcondor_ce_system(ctx, None, None, None)
    assert not absent.info.available
    assert "--htcondor-ce" in absent.info.why

    system = osys.htcondor_ce_system(ctx, htcondor_ce.ce, str(htcondor_ce.ca_file), images)
    assert system.info.available, system.info.why
    assert system.info.version == "HTCondor 23.9.6"
    sizes = {1: 1, 3: 1}
    opts = orch.Options(out=tmp_path / "r", sizes=sizes, timeout=180, gpu_wait=4)
    measured = orch.measure([system], sizes, opts, None)
    assert {m.workload for m in measured} >= {"makespan-1", "makespan-3", "first-start-3"}
    assert all(m.value is not None for m in measured), [m.error for m in measured]

    backend = orch.as_measured(system.backend)
    probes = {"killed running job": orch.kill_probe(backend),
              "GPU job (no GPU here)": orch.gpu_probe(backend, opts.gpu_wait)}  # fmt: skip
    row = orch.feature_row(system, probes)
    assert row["system"] == "htcondor-ce"
    assert row["killed running job"].startswith(("cancelled", "gone")), row
    assert row["GPU job (no GPU here)"].startswith("still queued after 4 s"), row  # no GPU in the pool
    assert "JobRouter" in row["priorities / fair share"]
    print(row)  # the row as the report shows it
