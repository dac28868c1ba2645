"""End to end on this machine: real runtimes through the pilot adapters, report files, why-rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from computeops_grid.bench import report
from computeops_grid.bench.features import matrix
from computeops_grid.bench.image import BenchImage
from computeops_grid.bench.results import Study
from computeops_grid.bench.runtime_study import Options, run
from computeops_grid.bench.runtimes import discover

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (Debian bubblewrap) absent")


def test_discover_gives_why_rows_found_by_the_tool(bench_image: BenchImage, tmp_path: Path) -> None:
    scratch = tmp_path / "s"
    scratch.mkdir()
    names = ["bubblewrap", "rkt", "no-such-runtime"]
    systems, infos, adapters = discover(names, bench_image.rootfs, scratch, tmp_path)
    by_name = {i.name: i for i in infos}
    assert [s.name for s in systems] == ["bare-metal", "bubblewrap"]
    assert by_name["bubblewrap"].available
    assert by_name["rkt"].why.startswith(
        "no rkt adapter in the pilot wrapper; rkt not found on PATH (no Debian"
    )
    assert "not found on PATH" in by_name["no-such-runtime"].why
    rows = matrix(adapters, scratch)
    assert rows[0]["exit code"] == "42 passed"
    assert rows[0]["binds"] == "/cvmfs ro enforced; scratch at /srv rw"
    isa = rows[0]["ISA inside (vectorisation)"]
    assert f"/proc/cpuinfo {bench_image.best_level} (" in isa and "same as host" in isa, isa
    assert "cpuid agrees" in isa and "simd-baseline its SSE2 path" in isa
    assert rows[0]["daemon (who holds the payload)"].startswith("no (payload is a child of the launcher")
    # pytest's temp dirs are 0700, so the unprivileged user cannot reach this image: said, not guessed
    rootless = rows[0]["works rootless (measured)"]
    assert rootless.startswith("not measured: the image is out of the user's reach")


@pytest.mark.skipif(shutil.which("crun") is None, reason="crun (Debian crun) absent")
def test_crun_row_carries_crun_own_error_or_runs(bench_image: BenchImage, tmp_path: Path) -> None:
    _systems, infos, _ = discover(["crun"], bench_image.rootfs, tmp_path, tmp_path)
    crun = infos[1]
    assert crun.available or crun.why.startswith("probe of /bin/true exited")


@pytest.mark.slow
def test_study_writes_report_with_answer_and_tables(tmp_path: Path) -> None:
    out = tmp_path / "report"
    opts = Options(out, ["bubblewrap", "rkt"], repeats=5, quick=True, workloads=["startup", "small-files"])
    written = run(opts)
    md = written.markdown.read_text()
    assert md.startswith("# Container runtimes")
    assert "Start-up latency is where they differ" in md.split("## Overhead")[0]  # the answer comes first
    assert "| startup | 1 (baseline) |" in md
    assert "| rkt | — | no rkt adapter in the pilot wrapper" in md
    assert "<table>" in written.html.read_text()
    assert written.plots
    assert written.plots[0].read_bytes()[:4] == b"\x89PNG"
    study = Study.load(written.json)
    assert len(study.measurements) == 5 * 2 * 2
    assert all(m.value is not None for m in study.measurements), [m.error for m in study.measurements]
    assert json.loads(written.json.read_text())["features"][0]["runtime"] == "bubblewrap"
    again = report.write(study, tmp_path / "again", "same data")  # the JSON alone re-renders the report
    assert "same data" in again.markdown.read_text()
