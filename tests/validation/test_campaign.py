"""A campaign through the real CLI, job store and local backend: run, rerun (no resubmission), report.

The bundle job runs on the node through the pilot wrapper's host mode (``--image host:``);
until the wrapper has it, this test skips with that reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.validation.probes import PILOT


def _host_mode() -> bool:
    if not PILOT.is_file():
        return False
    argv = [sys.executable, str(PILOT), "--image", "host:", "--dry-run", "--", "true"]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(not _host_mode(), reason="pilot wrapper has no host mode (--image host:) yet")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cops-grid", *args], capture_output=True, text=True, check=False, timeout=300)


def test_campaign_run_resume_report(cops_home: Path, tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(
        "name: ci\nsites:\n  - {name: here, backend: local, cvmfs_root: " + str(tmp_path / "cvmfs") + "}\n"
        "  - {name: gone, backend: nosuch}\ncredentials: none\n"
        "thresholds: {scratch_free_warn: 0.01, scratch_free_crit: 0.001, scratch_write_warn: 0.1,"
        " scratch_write_crit: 0.01, scratch_test_size: 2}\n"
    )
    first = _cli("validate-site", "run", str(campaign))
    assert first.returncode == 0, first.stderr
    again = _cli("validate-site", "run", str(campaign))
    assert again.stdout == first.stdout  # same job ids: nothing resubmitted
    sites = json.loads(first.stdout)  # JSON when piped, as every command
    assert sites["gone"]["job"] == "" and sites["gone"]["refused"].startswith("no backend named 'nosuch'")
    for _ in range(120):
        states = json.loads(_cli("validate-site", "status", str(campaign), "--json").stdout)
        if all(s["state"] in ("completed", "failed", "cancelled", "refused") for s in states.values()):
            break
        time.sleep(1)
    report = _cli("validate-site", "report", str(campaign), "--json", "-o", str(tmp_path / "out"))
    verdicts = {s["site"]: s["verdict"] for s in json.loads(report.stdout)["sites"]}
    assert verdicts["here"] == "failed"  # no CVMFS at the configured root
    assert verdicts["gone"] == "unreachable"
    gone = next(s for s in json.loads(report.stdout)["sites"] if s["site"] == "gone")
    assert "nosuch" in gone["message"]
    assert (tmp_path / "out" / "report.html").is_file()
