"""Sites made to fail for real give the expected verdicts; the HTML report renders in Chromium.

Each site runs the same runner and probes as the bundle does on a worker node
(``validate-site local`` path), against real conditions: a CVMFS stand-in directory, a
missing CVMFS root, a broken runtime binary first on PATH, an image absent from the root.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from computeops_grid.validation.campaign import Campaign, Image, Site
from computeops_grid.validation.history import changes
from computeops_grid.validation.local import run_local
from computeops_grid.validation.report_html import render_html
from computeops_grid.validation.results import SiteResult, State, Verdict
from tests.validation.browser import CRITICAL_RED, chromium, needs_chromium
from tests.validation.probes import PILOT

BUSYBOX = "docker://busybox:latest"
pytestmark = pytest.mark.skipif(not PILOT.is_file(), reason="pilot wrapper not in this checkout")


def _campaign(image_root: Path, cvmfs: Path, images: list[str], runtimes: list[str]) -> Campaign:
    sites = [
        Site(name="good", backend="local", cvmfs_root=str(cvmfs), image_root=str(image_root)),
        Site(
            name="no-cvmfs",
            backend="local",
            cvmfs_root=str(cvmfs.parent / "absent"),
            image_root=str(image_root),
        ),
    ]
    return Campaign(
        name="test", sites=sites, images=[Image(ref=r) for r in images], runtimes=runtimes,
        thresholds={"scratch_free_warn": 0.01, "scratch_free_crit": 0.001, "scratch_write_warn": 0.1,
                    "scratch_write_crit": 0.01, "scratch_test_size": 2},
    )  # fmt: skip


@pytest.fixture(scope="module")
def site_results(image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[SiteResult]:
    tmp = tmp_path_factory.mktemp("sites")
    cvmfs = tmp / "cvmfs"
    (cvmfs / "unpacked.cern.ch" / "registry.hub.docker.com").mkdir(parents=True)
    (cvmfs / "unpacked.cern.ch" / "README").write_text("stand-in for a mounted repository\n")
    good = _campaign(image_root, cvmfs, [BUSYBOX], ["bubblewrap", "proot"])
    results = [run_local(good, good.site("good")), run_local(good, good.site("no-cvmfs"))]
    absent = _campaign(image_root, cvmfs, ["docker://nosuch/image:1"], ["bubblewrap", "proot"])
    result = run_local(absent, absent.site("good"))
    result.site = "image-absent"
    results.append(result)
    broken_bin = tmp / "bin"
    broken_bin.mkdir()
    (broken_bin / "bwrap").write_text(
        "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"
    )
    (broken_bin / "bwrap").chmod(0o755)
    broken = _campaign(image_root, cvmfs, [BUSYBOX], ["bubblewrap"])
    saved = os.environ["PATH"]
    os.environ["PATH"] = f"{broken_bin}:{saved}"
    os.environ["COPS_PILOT_CACHE_TTL"] = "0"
    try:
        result = run_local(broken, broken.site("good"))
    finally:
        os.environ["PATH"] = saved
        del os.environ["COPS_PILOT_CACHE_TTL"]
    result.site = "broken-runtime"
    results.append(result)
    results.append(SiteResult("ce-down", Verdict.UNREACHABLE, message="job failed: CE did not answer"))
    return results


def _states(result: SiteResult) -> dict[str, str]:
    return {p.name: p.state.name for p in result.probes}


def test_verdicts_of_good_and_failing_sites(site_results: list[SiteResult]) -> None:
    by_site = {r.site: r for r in site_results}
    good = by_site["good"]
    assert good.verdict == Verdict.CERTIFIED, _states(good)
    assert _states(good)["image_run"] == "OK"
    assert _states(good)["binds"] == "OK"
    assert by_site["no-cvmfs"].verdict == Verdict.FAILED
    assert _states(by_site["no-cvmfs"])["cvmfs"] == "CRITICAL"
    absent = by_site["image-absent"]
    assert absent.verdict == Verdict.FAILED
    assert _states(absent)["image_run"] == "CRITICAL"
    assert "242" in next(p.summary for p in absent.probes if p.name == "image_run")
    broken = by_site["broken-runtime"]
    assert broken.verdict == Verdict.FAILED
    assert _states(broken)["runtime"] == "CRITICAL"
    assert broken.worst() == State.CRITICAL


def test_history_names_what_changed(site_results: list[SiteResult]) -> None:
    before = [SiteResult.from_dict(r.as_dict()) for r in site_results]
    before[0] = SiteResult.from_dict({**site_results[0].as_dict(), "verdict": "failed"})
    found = [str(c) for c in changes(before, site_results)]
    assert found == ["good: failed -> certified"]


@needs_chromium
def test_html_report_in_headless_chromium(site_results: list[SiteResult], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = tmp_path / "report.html"
    page.write_text(render_html("test", "run-1", site_results, []), encoding="utf-8")
    with chromium(tmp_path / "profile") as driver:
        driver.get(page.as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")
        assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == [r.site for r in site_results]
        verdicts = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "td.verdict")]
        assert verdicts == ["certified", "failed", "failed", "failed", "unreachable"]
        colour = driver.find_element(By.CSS_SELECTOR, "td.probe.CRITICAL").value_of_css_property(
            "background-color"
        )
        assert colour in CRITICAL_RED
        assert not driver.find_element(By.ID, "details").is_displayed()
        cell = driver.find_element(By.CSS_SELECTOR, 'td.probe[data-site="no-cvmfs"][data-probe="cvmfs"]')
        cell.click()
        details = driver.find_element(By.ID, "details")
        assert details.is_displayed()
        assert "no-cvmfs / cvmfs: CRITICAL" in details.text
        assert "missing" in details.text
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        assert "CE did not answer" in driver.find_element(By.ID, "unreachable").text


def test_local_cli_exits_with_worst_state(cops_home: Path) -> None:
    proc = subprocess.run(["cops-grid", "validate-site", "local", "--json"], capture_output=True, text=True,
                          check=False, timeout=300)  # fmt: skip
    data = json.loads(proc.stdout)
    states = [p["state"] for p in data["probes"]]
    worst = max(states, key=lambda s: {0: 0, 1: 1, 3: 2, 2: 3}[s])
    assert proc.returncode == worst, proc.stderr
    argv = ["cops-grid", "validate-site", "local"]
    table = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert table.returncode == worst
    assert "probe" in table.stdout
    assert "image_run" in table.stdout
    assert "cvmfs" in table.stdout
