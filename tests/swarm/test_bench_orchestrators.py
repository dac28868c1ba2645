"""`cops-grid bench orchestrators` on this machine: the local backend and the private swarm
run for real; the systems that cannot run here get rows with the reason found by probing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from computeops_grid.bench import orchestrators as orch
from computeops_grid.bench.daemons import PrivateDockerd

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_small_study_writes_the_report(tmp_path: Path, swarm_daemon: PrivateDockerd) -> None:
    opts = orch.Options(
        out=tmp_path / "r", sizes={1: 2, 4: 1}, docker_host=swarm_daemon.host, timeout=120, gpu_wait=4
    )
    written = orch.run(opts)
    text = written.markdown.read_text()
    assert written.html.is_file()
    assert written.plots
    data = json.loads(written.json.read_text())
    ok = {(m["system"], m["workload"]) for m in data["measurements"] if m["value"] is not None}
    for system in ("local", "swarm"):
        for wl in ("first-start-1", "makespan-4", "throughput-4"):
            assert (system, wl) in ok, (system, wl)
    why = {s["name"]: s["why"] for s in data["systems"] if not s["available"]}
    assert "not on PATH" in why["mesos"]
    assert "rkt" in why["rkt"]
    assert "shifter" in why["shifter"]
    assert "kubeconfig" in why["kubernetes"]
    features = {row["system"]: row for row in data["features"]}
    assert features["swarm"]["job over memory limit"].startswith("failed, exit 137: limit enforced")
    assert "insufficient resources" in features["swarm"]["GPU job (no GPU here)"]
    assert "after cancel" in features["swarm"]["killed running job"]
    assert "## Feature matrix" in text
    assert "Measured here: local, swarm" in text
