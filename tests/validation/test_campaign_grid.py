"""A campaign over the real local backend, the real Slurm and the real local ARC CE, plus sites
made to fail, through the real CLI and job store: run, rerun (resumes, never resubmits), status,
report (JSON, and HTML checked in headless Chromium).

Every validation job runs the bundle on the node through the pilot wrapper's host mode; ARC
jobs run as ``nobody`` (Slurm LRMS), so the CVMFS stand-in and the image repository are
world-readable. The failing sites fail for real: a CVMFS root that is missing, an image absent
from the repository, a ``bwrap`` first on the job's PATH that fails the way a broken setuid or
userns set-up does, and a backend that does not exist.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Cli, configure_backend
from tests.services.htcondor import HTCondorCE
from tests.services.slurm import world_dir
from tests.validation.browser import CRITICAL_RED, chromium

pytestmark = [pytest.mark.service, pytest.mark.slow]

EXPECTED = {
    "laptop": "certified",  # local backend
    "cluster": "certified",  # Slurm
    "grid-ce": "certified",  # A-REX (REST) on Slurm, as nobody
    "htcondor-site": "certified",  # HTCondor-CE, SciTokens, routed to its pool, as copsuser
    "no-cvmfs": "failed",  # Slurm, CVMFS root missing
    "broken-runtime": "failed",  # local, bwrap fails
    "image-absent": "failed",  # local, image not in the repository
    "gone": "unreachable",  # no such backend
}
WORST = {"no-cvmfs": "cvmfs", "broken-runtime": "runtime", "image-absent": "image_run"}
FINAL = ("completed", "failed", "cancelled", "refused")
BROKEN_BWRAP = "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Path]:
    """A directory ``nobody`` can read: CVMFS stand-in, empty image repository, broken bwrap."""
    root = world_dir("cops-validation-")
    cvmfs = root / "cvmfs" / "unpacked.cern.ch"
    (cvmfs / "registry.hub.docker.com").mkdir(parents=True)
    (cvmfs / "README").write_text("stand-in for a mounted repository\n")
    (root / "no-images").mkdir()
    (root / "bin").mkdir()
    (root / "bin" / "bwrap").write_text(BROKEN_BWRAP)
    (root / "bin" / "bwrap").chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _campaign(path: Path, world: Path, images: Path, arc: dict[str, Any], condor: dict[str, Any]) -> Path:
    good = {"cvmfs_root": str(world / "cvmfs"), "image_root": str(images)}
    inline_ce = {k: v for k, v in arc.items() if k != "image_root"}  # the CE's settings, inline
    condor_ce = {k: condor[k] for k in ("ce", "ca_file")}
    broken_path = f"{world / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    sites: list[dict[str, Any]] = [
        {"name": "laptop", "backend": "local", **good},
        {"name": "cluster", "backend": "slurm", **good},
        {"name": "grid-ce", "type": "arc", **inline_ce, "endpoint": "local A-REX", **good},
        {"name": "htcondor-site", "type": "htcondor-ce", **condor_ce, **good},
        {"name": "no-cvmfs", "backend": "slurm", **good, "cvmfs_root": str(world / "absent")},
        {"name": "broken-runtime", "backend": "local", **good, "environment": {"PATH": broken_path}},
        {"name": "image-absent", "backend": "local", **good, "image_root": str(world / "no-images")},
        {"name": "gone", "backend": "nosuch"},
    ]
    campaign = {
        "name": "grid", "sites": sites, "runtimes": ["bubblewrap"], "credentials": "none",
        "images": [{"ref": "docker://busybox:latest", "file": "/bin/busybox"}],
        "thresholds": {"scratch_free_warn": 0.01, "scratch_free_crit": 0.001, "scratch_write_warn": 0.1,
                       "scratch_write_crit": 0.01, "scratch_test_size": 2, "min_cores": 1},
        "walltime": 600,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))
    return path


def _status(cli: Cli, campaign: Path) -> dict[str, dict[str, str]]:
    res = cli("validate-site", "status", str(campaign), "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, dict)
    return data


def _wait_done(cli: Cli, campaign: Path, timeout: float = 240) -> dict[str, dict[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        states = _status(cli, campaign)
        if all(s["state"] in FINAL for s in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(2)


def _job_lines(stdout: str) -> dict[str, str]:
    """Site -> job id or ``refused: why``, from ``validate-site run`` (JSON when not a terminal)."""
    if stdout.lstrip().startswith("{"):
        data = json.loads(stdout)
        return {s: v["job"] or f"refused: {v['refused']}" for s, v in data.items()}
    return dict(line.split(maxsplit=1) for line in stdout.splitlines())


@pytest.fixture
def grid_cli(cli: Cli, cops_home: Path, slurm_settings: dict[str, Any], arc_settings: dict[str, Any]) -> Cli:
    configure_backend(cops_home, "slurm", slurm_settings)  # the CE is defined inline in the campaign
    return cli


@pytest.fixture
def ces(
    arc_settings: dict[str, Any], htcondor_ce: HTCondorCE, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[str, Any]]:
    """The CEs' settings, for inline sites; the HTCondor-CE's token where WLCG discovery finds it."""
    token = tmp_path / "bt_ce"
    token.write_text(htcondor_ce.token())
    token.chmod(0o600)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token))
    condor = {"ce": htcondor_ce.ce, "ca_file": str(htcondor_ce.ca_file), "mapped to": htcondor_ce.user}
    return {"arc": arc_settings, "htcondor-ce": condor}


def test_campaign_over_local_slurm_and_arc(
    grid_cli: Cli, world: Path, grid_images: Path, tmp_path: Path, ces: dict[str, dict[str, Any]]
) -> None:
    campaign = _campaign(tmp_path / "campaign.yaml", world, grid_images, ces["arc"], ces["htcondor-ce"])
    first = grid_cli("validate-site", "run", str(campaign), timeout=180)
    assert first.code == 0, first.stderr
    jobs = _job_lines(first.stdout)
    assert list(jobs) == list(EXPECTED)
    assert jobs["gone"].startswith("refused: no resource or backend type named 'nosuch'")

    again = grid_cli("validate-site", "run", str(campaign), timeout=180)  # resumes the same run
    assert again.code == 0, again.stderr
    assert again.stdout == first.stdout  # same job ids, the refusal kept
    live = _status(grid_cli, campaign)
    assert {s: v["job"] for s, v in live.items() if v["job"]} == {
        s: j for s, j in jobs.items() if not j.startswith("refused")
    }
    assert live["grid-ce"]["state"] in ("queued", "running")  # rerun met a live job and left it
    stored = grid_cli("list", "--json").json()
    assert isinstance(stored, list)
    assert sorted(j["id"] for j in stored) == sorted(j for j in jobs.values() if not j.startswith("refused"))
    assert {j["backend"] for j in stored} == {"local", "slurm", "grid.grid-ce", "grid.htcondor-site"}

    states = _wait_done(grid_cli, campaign)
    assert {s: v["state"] for s, v in states.items()} == {
        **dict.fromkeys(EXPECTED, "completed"),
        "gone": "refused",
    }, states
    table = grid_cli("validate-site", "status", str(campaign))
    assert table.code == 0, table.stderr
    assert "8/8 sites done" in table.stderr
    assert all(site in table.stdout for site in EXPECTED)

    out = tmp_path / "report"
    report = grid_cli("validate-site", "report", str(campaign), "--json", "-o", str(out))
    assert report.code == 0, report.stderr
    data = report.json()
    assert isinstance(data, dict)
    sites = {s["site"]: s for s in data["sites"]}
    verdicts = {name: s["verdict"] for name, s in sites.items()}
    assert verdicts == EXPECTED, {
        n: [(p["name"], p["status"]) for p in s["probes"]] for n, s in sites.items()
    }
    for name, probe in WORST.items():
        states_of = {p["name"]: p["status"] for p in sites[name]["probes"]}
        assert states_of[probe] == "CRITICAL", (name, states_of)
    assert "nosuch" in sites["gone"]["message"]
    assert sites["grid-ce"]["user"] == "nobody"  # A-REX mapped the VO to nobody
    assert sites["htcondor-site"]["user"] == ces["htcondor-ce"]["mapped to"]  # the token's subject, mapped
    assert sites["laptop"]["user"] == sites["cluster"]["user"] == "root"
    _check_html(out / "report.html", tmp_path)
    print(report_table(sites))  # the verdict table, for the log


def report_table(sites: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, site in sites.items():
        bad = [f"{p['name']}={p['status']}" for p in site["probes"] if p["status"] != "OK"]
        lines.append(f"{name:15} {site['verdict']:12} {' '.join(bad) or site['message'][:60]}")
    return "\n".join(lines)


def _check_html(page: Path, tmp_path: Path) -> None:
    if shutil.which("chromedriver") is None:
        pytest.skip("verdicts checked; chromium-driver not installed for the HTML check")
    from selenium.webdriver.common.by import By

    with chromium(tmp_path / "profile") as driver:
        driver.get(page.as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")
        assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == list(EXPECTED)
        verdicts = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "td.verdict")]
        assert verdicts == list(EXPECTED.values())
        cell = driver.find_element(
            By.CSS_SELECTOR, 'td.probe[data-site="image-absent"][data-probe="image_run"]'
        )
        assert cell.value_of_css_property("background-color") in CRITICAL_RED
        assert not driver.find_element(By.ID, "details").is_displayed()
        cell.click()
        details = driver.find_element(By.ID, "details")
        assert details.is_displayed()
        assert "image-absent / image_run: CRITICAL" in details.text
        assert "nosuch" in driver.find_element(By.ID, "unreachable").text
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
