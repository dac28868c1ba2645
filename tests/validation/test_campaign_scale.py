"""A campaign of 200 sites, as a VO manager runs one: a few real sites (local, the test Slurm,
the test A-REX inline) among CEs that refuse connections, clusters whose client tools are
missing and backends that do not exist. It runs, reports and resumes through the real CLI.

The client-side cost per site is measured by ``benchmarks/campaign_bench.py``.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Cli, configure_backend

pytestmark = [pytest.mark.service, pytest.mark.slow]
N_SITES = 200


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _campaign(path: Path, arc: dict[str, Any], images: Path) -> tuple[Path, dict[str, str]]:
    """The campaign file and the verdict class each site must get."""
    real = {"image_root": str(images)}
    sites: list[dict[str, Any]] = [
        {"name": "laptop", "backend": "local", **real},
        {"name": "cluster", "backend": "slurm", **real},
        {"name": "grid-ce", "type": "arc", **{k: v for k, v in arc.items() if k != "image_root"}, **real},
    ]
    sites += [
        {"name": f"dead-ce-{i}", "type": "arc", **arc, "ce": f"https://127.0.0.1:{closed_port()}/arex"}
        for i in range(10)
    ]
    sites += [{"name": f"no-tools-{i}", "type": "slurm", "bin_dir": "/nonexistent/bin"} for i in range(137)]
    sites += [{"name": f"gone-{i}", "backend": f"nosuch-{i}"} for i in range(N_SITES - len(sites))]
    campaign = {"name": "vo-wide", "sites": sites, "walltime": 600, "images": []}
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))
    expect = {s["name"]: "ran" for s in sites[:3]}
    expect.update({s["name"]: "unreachable" for s in sites[3:]})
    return path, expect


def test_two_hundred_sites_run_report_and_resume(
    cli: Cli, tmp_path: Path, slurm_settings: dict[str, Any], arc_settings: dict[str, Any], grid_images: Path
) -> None:
    configure_backend(cli.home, "slurm", slurm_settings)
    campaign, expect = _campaign(tmp_path / "vo.yaml", arc_settings, grid_images)
    assert len(expect) == N_SITES
    started = time.monotonic()
    first = cli("validate-site", "run", str(campaign), "--json", timeout=600)
    took = time.monotonic() - started
    assert first.code == 0, first.stderr
    lines = first.json()
    assert isinstance(lines, dict) and len(lines) == N_SITES
    assert all(lines[f"gone-{i}"]["refused"].startswith("no resource or backend type") for i in range(50))
    print(f"{N_SITES} sites planned and submitted in {took:.1f} s")

    again = cli("validate-site", "run", str(campaign), "--json", timeout=600)  # resumes the same run
    assert again.code == 0, again.stderr
    resumed = again.json()
    assert isinstance(resumed, dict)
    assert {s: resumed[s] for s in ("laptop", "cluster", "grid-ce")} == {
        s: lines[s] for s in ("laptop", "cluster", "grid-ce")
    }  # live jobs are never resubmitted
    stored = cli("list", "--json").json()
    assert isinstance(stored, list)
    assert len(stored) == 3 + 10 + 137  # one job per site that has a resource; none twice

    report = cli("validate-site", "report", str(campaign), "--json", "-o", str(tmp_path / "r"), timeout=300)
    assert report.code == 0, report.stderr
    sites = {s["site"]: s for s in report.json()["sites"]}  # type: ignore[index]
    assert len(sites) == N_SITES
    for name, kind in expect.items():
        verdict = sites[name]["verdict"]
        if kind == "unreachable":
            assert verdict == "unreachable", (name, sites[name])
        else:
            assert verdict in ("pending", "certified", "degraded", "failed"), (name, sites[name])
    assert "`sbatch` is not installed" in sites["no-tools-0"]["message"]
    assert "cannot reach the CE https://127.0.0.1:" in sites["dead-ce-0"]["message"]
    assert "nosuch-7" in sites["gone-7"]["message"]
    live = [j["id"] for j in stored if j["backend"] in ("local", "slurm", "vo-wide.grid-ce")]
    assert cli("cancel", *live, timeout=120).code in (0, 9)
