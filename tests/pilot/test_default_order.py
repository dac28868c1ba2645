"""The wrapper's default runtime order agrees with the runtime study, and the report says why.

The study (`cops-grid bench runtimes` on the project's 2-core Debian 12 node, issue 16) measured
start-up and the small-file workload against bare metal: udocker 121 ms and 33-37x (its proot
mode, the only one that works unprivileged there), charliecloud 2 ms and 0.94x, bubblewrap 5 ms
and 0.94x. Whatever subset of runtimes a node has, the default must never pick one the study
measured slower while a faster one works there.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import ModuleType

import pytest

from computeops_grid import worker

from .conftest import IMAGE, PilotRunner

# measured by the study (issue 16); the small-file cost of proot/udocker is 33-37x: the lower bound
STUDY: dict[str, dict[str, float]] = {
    "charliecloud": {"startup_ms": 2.0, "small_files_x": 0.94},
    "bubblewrap": {"startup_ms": 5.0, "small_files_x": 0.94},
    "udocker": {"startup_ms": 121.0, "small_files_x": 33.0},
    "proot": {"small_files_x": 33.0},
}
DECISIVE = 1.5  # "slower": worse on every shared measure, and by half again on one of them
PAYLOAD = ["--", "/bin/sh", "-c", "echo payload-ran"]
NON_FALLBACK = {"apptainer", "singularity", "charliecloud", "bubblewrap", "runc", "podman"}


@pytest.fixture(scope="module")
def pilot() -> ModuleType:
    return worker.load_pilot()


def slower(a: str, b: str) -> bool:
    """The study measured ``a`` slower than ``b``."""
    if a not in STUDY or b not in STUDY:
        return False
    shared = set(STUDY[a]) & set(STUDY[b])
    return (
        bool(shared)
        and all(STUDY[a][k] >= STUDY[b][k] for k in shared)
        and any(STUDY[a][k] > DECISIVE * STUDY[b][k] for k in shared)
    )


def test_the_default_order_is_the_designed_one(pilot: ModuleType) -> None:
    order = pilot.split_list(pilot.DEFAULT_ORDER)
    assert order == ["apptainer", "singularity", "charliecloud", "bubblewrap", "runc", "podman", "udocker"]
    assert "proot" not in order  # only through udocker, or when named
    assert "docker" not in order  # a root daemon: only when named
    assert set(order) | {"proot", "docker"} == set(pilot.RUNTIMES)
    assert set(pilot.RUNTIME_NOTES) == set(pilot.RUNTIMES)  # every winner can say why


def test_no_node_gets_a_runtime_the_study_measured_slower(pilot: ModuleType) -> None:
    """Every combination of working runtimes: the default's pick is never measured slower than
    another one that works."""
    order = pilot.split_list(pilot.DEFAULT_ORDER)
    assert slower("udocker", "charliecloud") and slower("udocker", "bubblewrap")  # the table means it
    for size in range(1, len(order) + 1):
        for works in itertools.combinations(order, size):
            chosen = works[0]  # combinations keep the default order
            assert not [w for w in works if slower(chosen, w)], works


def test_the_reasons_quote_the_study(pilot: ModuleType) -> None:
    for name in ("charliecloud", "bubblewrap", "udocker"):
        ms = f"{STUDY[name]['startup_ms']:.0f} ms"
        assert ms in pilot.RUNTIME_NOTES[name], name


@pytest.mark.root
@pytest.mark.slow
def test_on_this_node_the_default_picks_the_fastest_that_works(run_pilot: PilotRunner) -> None:
    listed = run_pilot(["--list-runtimes", "--json", "--image", IMAGE], report=False)
    assert listed.code == 0, listed.stderr
    data = json.loads(listed.stdout)
    working = [r["name"] for r in data["runtimes"] if r["status"] == "ok"]
    if not working:
        pytest.skip("no runtime works on this node")
    assert data["order_source"] == "built-in default"
    assert data["chosen"] == working[0]
    result = run_pilot(["--image", IMAGE, *PAYLOAD])
    assert result.code == 0, result.stderr
    chosen = result.report["runtime"]
    assert chosen == working[0]
    assert not [w for w in working if slower(chosen, w)], (chosen, working)
    if {"charliecloud", "bubblewrap"} & set(working):  # this project's nodes: never udocker
        assert chosen in ("charliecloud", "bubblewrap")
    why = result.report["why"]
    assert why.startswith(f"{chosen}: the first runtime of the built-in default order")
    for attempt in result.report["attempts"][:-1]:  # what was wrong with each one before it
        assert f"{attempt['name']} {attempt['status']}" in why


def _failing(run_pilot: PilotRunner, names: list[str]) -> Path:
    """A PATH directory whose runtime binaries all fail their probe."""
    directory = run_pilot.node.workdir()
    for name in names:
        path = directory / name
        path.write_text(f"#!/bin/sh\necho '{name}: error: broken on purpose' >&2\nexit 1\n")
        path.chmod(0o755)
    return directory


@pytest.mark.root
@pytest.mark.slow
def test_udocker_only_when_nothing_else_works(run_pilot: PilotRunner, pilot: ModuleType) -> None:
    """Every other runtime of the default order present but broken: udocker, and the report says
    it is the fallback and what it costs."""
    binaries = [b for n in sorted(NON_FALLBACK) for b in pilot.RUNTIMES[n].binaries]
    broken = _failing(run_pilot, binaries)
    result = run_pilot(["--image", IMAGE, *PAYLOAD], path_prefix=[str(broken)])
    if result.report.get("runtime") != "udocker" and "udocker:not-found" in str(result.report):
        pytest.skip("udocker is not installed here (etc/deps/pip-pilot.txt)")
    assert result.code == 0, result.stderr
    assert result.report["runtime"] == "udocker"
    assert result.report["mode"] == "ptrace"
    why = result.report["why"]
    assert "charliecloud probe-failed" in why
    assert "bubblewrap probe-failed" in why
    assert "the fallback that needs nothing from the site" in why
    assert "121 ms" in why


@pytest.mark.root
@pytest.mark.slow
def test_a_site_order_wins_and_the_report_says_where_it_came_from(
    run_pilot: PilotRunner, tmp_path: Path
) -> None:
    listed = json.loads(run_pilot(["--list-runtimes", "--json", "--image", IMAGE], report=False).stdout)
    working = [r["name"] for r in listed["runtimes"] if r["status"] == "ok"]
    site = [n for n in ("bubblewrap", "charliecloud", "proot") if n in working][:2]
    if len(site) < 2:
        pytest.skip("needs two of bubblewrap, charliecloud, proot working")
    by_env = run_pilot(["--image", IMAGE, *PAYLOAD], env={"COPS_PILOT_RUNTIMES": ",".join(site)})
    assert by_env.report["runtime"] == site[0]
    assert by_env.report["order_source"] == "COPS_PILOT_RUNTIMES"
    assert "COPS_PILOT_RUNTIMES order" in by_env.report["why"]
    conf = run_pilot.node.workdir() / "pilot.conf"
    conf.write_text(f"[pilot]\nruntimes = {site[1]}, {site[0]}\n")
    conf.chmod(0o644)
    by_file = run_pilot(["--image", IMAGE, *PAYLOAD], env={"COPS_PILOT_CONFIG": str(conf)})
    assert by_file.report["runtime"] == site[1]
    assert by_file.report["order_source"] == str(conf)
