"""The fault matrix: every backend that runs here x every way the network (or the client)
can fail a submit. The promise under test: a job is never lost and never runs twice.

Each test submits a parametric job file with the real ``cops-grid submit`` in a
subprocess while the fault lasts (see :mod:`tests.faults.rigs` for how each is injected),
checks what the submit said and left in the store, heals the fault, then runs
``cops-grid sync`` (in another process, as a user would, until nothing is ``new`` or
``submitting``) and checks with the backend's own view that every job of the store is
there exactly once, under the native id the store recorded, and will run:

* ``lost-reply`` / ``gateway-504``: exit 76, jobs ``submitting``, the submit request was
  sent exactly once (no library retried it); ``sync`` finds them, submits nothing again;
* ``down`` / ``missing-tool``: exit 75 / 69, jobs ``new``, nothing on the backend;
  ``sync`` submits them once;
* ``down-after-accept`` (DiracX): the server answers a parametric submit and is gone
  before the client confirmed the jobs: exit 76, jobs ``submitting``; ``sync`` confirms them;
* ``killed``: SIGKILL to the client's process group once the backend has some of the
  jobs (200, in two parametric groups of 100); ``sync`` finds those, submits the others.

Bulks are 10 jobs for the other faults. ARC is slow here, so its bulks are smaller: over
REST the kill bulk is 2 x 20 (A-REX needs minutes to work through 200 jobs and their
kill, and the session's later ARC tests waited behind them), over ``arcsub`` 2 x 5 for
the kill and 3 jobs for the other faults (arcsub takes about 1.4 s a job). See
:class:`tests.faults.rigs.ArcRestRig` and :class:`tests.faults.rigs.ArcCliRig`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Cli, configure_backend
from tests.faults.rigs import FAULTS, Injection, Rig, StoreJob, run_cli, store_jobs

pytestmark = [pytest.mark.service, pytest.mark.slow]

BACKENDS = ("local", "slurm", "arc-rest", "arc-cli", "diracx", "swarm")
CASES = [pytest.param(b, f, id=f"{b}-{f}") for b in BACKENDS for f in FAULTS]
# the service accepts the submit and is gone before the client's next request: only DiracX
# has a next request that decides whether the jobs exist (the parametric confirmation)
CASES.append(pytest.param("diracx", "down-after-accept", id="diracx-down-after-accept"))
SYNC_ROUNDS = 4


def job_file(tmp: Path, rig: Rig, injection: Injection) -> Path:
    """``groups`` parametric jobs of ``jobs / groups`` elements each; the payload is ``true``."""
    per = injection.jobs // injection.groups
    jobs = [
        {
            "name": f"fault{g}-${{i}}",
            "image": "docker://busybox:latest",
            "command": "true",
            "arguments": ["${i}"],
            "parameters": {"i": {"start": 1, "stop": per}},
            **rig.spec,
        }
        for g in range(injection.groups)
    ]
    path = tmp / "bulk.yaml"
    path.write_text(yaml.safe_dump({"jobs": jobs} if len(jobs) > 1 else jobs[0]))
    return path


def kill_when_seen(cli: Cli, rig: Rig, path: Path, injection: Injection) -> tuple[int, int]:
    """Start the submit; SIGKILL its process group once the backend has some of the jobs.
    Returns (jobs the backend had at the kill, jobs the store had recorded as submitted)."""
    proc = subprocess.Popen(
        cli.argv("submit", str(path), "--backend", rig.backend),
        env={**os.environ, "COPS_GRID_HOME": str(cli.home), **injection.env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    seen = 0
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            jobs = store_jobs(cli.home)
            seen = rig.seen(jobs) if jobs else 0
            if seen:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"the submit ended by itself ({proc.returncode}) before the kill"
    )
    recorded = sum(j.state not in ("new", "submitting") for j in store_jobs(cli.home))
    return seen, recorded


def sync_until_settled(cli: Cli) -> list[dict[str, Any]]:
    """``cops-grid sync`` in its own process until no job is new or submitting (bounded)."""
    reports = []
    for _ in range(SYNC_ROUNDS):
        res = cli("sync", "--json", timeout=600)
        assert res.code == 0, res.stderr
        report = res.json()
        assert isinstance(report, dict)
        reports.append(report)
        if not {j.state for j in store_jobs(cli.home)} & {"new", "submitting"}:
            return reports
    raise AssertionError(f"not settled after {SYNC_ROUNDS} syncs: {reports}")


def assert_exactly_once(rig: Rig, jobs: list[StoreJob]) -> None:
    """The backend's own view: each store job once, under the store's native id, runnable."""
    lost = {j.id: j.state for j in jobs if j.state in ("new", "submitting", "failed") or not j.native_id}
    assert not lost, f"jobs without a place on the backend: {lost}"
    view = rig.view(jobs)
    counts = Counter({j.id: len(view.get(j.id, [])) for j in jobs})
    wrong = {i: n for i, n in counts.items() if n != 1}
    assert not wrong, f"jobs not exactly once on the backend (id: count): {wrong}"
    strays = set(view) - {j.id for j in jobs}
    assert not strays, f"backend jobs no store job knows: {strays}"
    mismatched = {j.id: (rig.native(j), view[j.id][0]) for j in jobs if rig.native(j) != view[j.id][0]}
    assert not mismatched, f"store native id != backend's (id: (store, backend)): {mismatched}"
    stranded = rig.stranded(jobs)
    assert not stranded, f"jobs the backend has but will never run: {stranded}"


@pytest.mark.parametrize(("backend", "fault"), CASES)
def test_fault(backend: str, fault: str, request: pytest.FixtureRequest, cli: Cli, tmp_path: Path) -> None:
    rig: Rig = request.getfixturevalue(f"rig_{backend.replace('-', '_')}")
    if fault in rig.skips:
        pytest.skip(f"{backend}-{fault}: {rig.skips[fault]}")
    jobs: list[StoreJob] = []
    try:
        injection = rig.inject(fault)
        configure_backend(cli.home, rig.backend, injection.settings)
        path = job_file(tmp_path, rig, injection)

        if fault == "killed":
            seen, recorded = kill_when_seen(cli, rig, path, injection)
            assert 0 < seen < injection.jobs, f"the kill should land mid-bulk (backend had {seen})"
            assert recorded < seen, "the kill should leave accepted jobs unrecorded"
        else:
            res = run_cli(cli.argv("submit", str(path), "--backend", rig.backend), cli.home, injection.env)
            assert res.returncode == injection.code, (res.returncode, res.stderr)
            jobs = store_jobs(cli.home)
            states = Counter(j.state for j in jobs)
            if fault in ("down", "missing-tool"):
                assert states == {"new": injection.jobs}, states
                assert rig.seen(jobs) == 0, "nothing may reach a backend that is down"
            else:
                assert states["submitting"] >= 1 and set(states) <= {"submitting", "new"}, states
            if rig.relay is not None:
                assert len(rig.relay.dropped) == (fault != "down-after-accept"), rig.relay.dropped
                assert rig.submit_requests() == 1, f"the submit was repeated: {rig.relay.seen}"
        rig.close()  # the fault is over: the relay goes, the settings are the real ones again
        configure_backend(cli.home, rig.backend, rig.settings())

        reports = sync_until_settled(cli)
        jobs = store_jobs(cli.home)
        assert len(jobs) == injection.jobs
        assert sum(r["submitted"] + r["found"] for r in reports) <= injection.jobs
        assert_exactly_once(rig, jobs)
    finally:
        try:
            rig.cleanup(jobs or store_jobs(cli.home))
        finally:
            rig.close()
