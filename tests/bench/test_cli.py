"""`cops-grid bench runtimes` through the real console entry point (a subprocess)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (Debian bubblewrap) absent")
def test_bench_runtimes_prints_the_table_and_writes_the_report(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["bench", "runtimes", "--quick", "--runtimes", "bubblewrap,rkt", "--workloads", "startup"]
    result = cli(*args, "--no-features", "--out", str(out), timeout=300)
    assert result.code == 0, result.stderr
    printed = json.loads(result.stdout)  # not a terminal: JSON for scripts
    assert printed["markdown"] == str(out / "report.md")
    assert printed["answer"].startswith("Once started") or "bubblewrap" in printed["answer"]
    rows = {(r["workload"], r["system"]): r for r in printed["rows"]}
    assert rows[("startup", "bare-metal")]["n_ok"] == 5
    assert rows[("startup", "bubblewrap")]["ratio"] > 0
    assert (out / "report.md").exists()
    assert (out / "report.html").exists()
    study = json.loads((out / "results.json").read_text())
    assert len(study["measurements"]) == 2 * 5  # --quick defaults to 5 repetitions
    assert "[5/5] startup" in result.stderr  # progress goes to stderr, the table to stdout


def test_bad_workload_is_a_clear_error_without_traceback(cli: Cli, tmp_path: Path) -> None:
    result = cli("bench", "runtimes", "--quick", "--workloads", "fft", "--out", str(tmp_path / "r"))
    assert result.code != 0
    assert "Error: unknown workload(s): fft" in result.stderr
    assert "Hint: choose from startup" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
