"""The HTCondor-CE backend against a real CE (``htcondor_ce``: Debian trixie's HTCondor 23.9 set
up as HTCondor-CE sets up its daemons, with a pool behind a JobRouter route): SciTokens from the
fixture's issuer, found by WLCG token discovery; a bulk submit with spooled inputs, routed and
run on the pool's node as the mapped user, the wrapper running the container payload there;
status in bulk, exit code 42, outputs retrieved, the history once jobs left the queue; a hold
reason; remove; tokens the CE refuses; why vanilla jobs and not the grid universe; and
``cops-grid submit etc/examples/hello.yaml --backend htcondor-ce --wait`` (its wrapper report in
the store without a ``get``)."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from computeops_grid import Client, worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.htcondor_ce.backend import HTCondorCEBackend, HTCondorCESettings, bindings
from computeops_grid.errors import Delivery
from computeops_grid.images.default import PUBLIC
from computeops_grid.jobs.state import JobState
from tests.conftest import EXAMPLES, Cli, configure_backend
from tests.services.grid_jobs import record, settle, submit_ok, wait_for
from tests.services.htcondor import HTCondorCE

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.root]


@pytest.fixture
def backend(ce_token: Path, ce_settings: dict[str, Any], tmp_path: Path) -> HTCondorCEBackend:
    ctx = BackendContext(
        home=tmp_path,
        jobs_dir=tmp_path / "jobs",
        image_root=Path(ce_settings["image_root"]),
        pilot=worker.pilot(),
    )
    return HTCondorCEBackend(HTCondorCESettings(**ce_settings), ctx)


def _in_queue(backend: HTCondorCEBackend, cluster: str) -> list[Any]:
    return backend._query(f"ClusterId == {cluster}")


def test_bulk_is_routed_to_the_pool_and_comes_back(
    backend: HTCondorCEBackend, htcondor_ce: HTCondorCE, tmp_path: Path
) -> None:
    """One cluster of three with a spooled input; exit codes 0, 0, 42; outputs and report back;
    the payload ran in a container on the pool's node as the user the token maps to."""
    (tmp_path / "in.txt").write_text("spooled-input\n")
    jobs = [
        record(f"cat in.txt; id -u > who; echo {i} > result.txt; exit {code}",
               inputs=["in.txt"], outputs=["result.txt", "who"], bulk_id="b1", index=i)
        for i, code in enumerate([0, 0, 42])
    ]  # fmt: skip
    for job in jobs:
        job.source = str(tmp_path / "job.yaml")
    submit_ok(backend, jobs)
    clusters = {str(j.native_id).split(".")[0] for j in jobs}
    assert len(clusters) == 1, [j.native_id for j in jobs]  # one submit, one cluster
    states = settle(backend, jobs, timeout=180, step=1)
    assert [states[j.id] for j in jobs] == [JobState.COMPLETED, JobState.COMPLETED, JobState.FAILED]
    info = backend.status(jobs)  # one query for all three
    assert [info[j.id].exit_code for j in jobs] == [0, 0, 42]

    uid = pwd.getpwnam(htcondor_ce.user).pw_uid
    for i, job in enumerate(jobs):
        files = {p.name: p for p in backend.fetch_outputs(job, tmp_path / "out" / job.id)}
        assert {"std.out", "std.err", "cops-report.json", "result.txt", "who"} <= set(files), files
        assert files["std.out"].read_text() == "spooled-input\n"
        assert files["result.txt"].read_text() == f"{i}\n"
        assert files["who"].read_text() == f"{uid}\n"  # mapped from the token's subject
        report = json.loads(files["cops-report.json"].read_text())
        assert (report["runtime"], report["exit_code"]) == ("bubblewrap", [0, 0, 42][i])

    # retrieved jobs leave the CE's queue; status then reads the schedd's history
    (cluster,) = clusters
    wait_for(lambda: not _in_queue(backend, cluster), timeout=60, step=1)
    again = backend.status(jobs)
    assert [(again[j.id].state, again[j.id].exit_code) for j in jobs] == [
        (JobState.COMPLETED, 0), (JobState.COMPLETED, 0), (JobState.FAILED, 42)
    ]  # fmt: skip
    # the JobRouter's copies ran in the pool, owned by the mapped user (its history, once they left)
    want = {f"{htcondor_ce.user} {j.native_id}" for j in jobs}

    def routed() -> set[str]:
        return set(
            htcondor_ce.run("pool", "condor_history", "-af", "Owner", "RoutedFromJobId").stdout.splitlines()
        )

    wait_for(lambda: want <= routed(), timeout=60, step=1)


def test_hold_reason_then_remove(backend: HTCondorCEBackend, htcondor_ce: HTCondorCE) -> None:
    job = record("sleep 300")
    submit_ok(backend, [job])
    wait_for(lambda: backend.status([job])[job.id].state == JobState.RUNNING, timeout=120, step=1)
    site = htcondor_ce.run("ce", "condor_hold", "-reason", "held by the site: over quota", str(job.native_id))
    assert site.returncode == 0, site.stderr  # the CE's admin (root) holds it
    wait_for(lambda: backend.status([job])[job.id].native_state == "5", timeout=30, step=0.5)
    held = backend.status([job])[job.id]
    assert held.state == JobState.QUEUED
    assert held.message.startswith("held by the site: over quota")
    backend.cancel([job])
    wait_for(lambda: backend.status([job])[job.id].state == JobState.CANCELLED, timeout=60, step=1)


REFUSAL_PROBE = """
import json, sys
from pathlib import Path
from computeops_grid import Client, worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.htcondor_ce.backend import HTCondorCEBackend, HTCondorCESettings
from tests.services.grid_jobs import record
settings, home = json.loads(sys.argv[1]), Path(sys.argv[2])
ctx = BackendContext(home=home, jobs_dir=home / "jobs", image_root=home, pilot=worker.pilot())
(res,) = HTCondorCEBackend(HTCondorCESettings(**settings), ctx).submit([record("true")])
print(json.dumps([res.native_id, res.error and res.error.message, res.error and res.error.delivery.name]))
"""


def test_tokens_the_ce_refuses(
    backend: HTCondorCEBackend, htcondor_ce: HTCondorCE, ce_settings: dict[str, Any], tmp_path: Path
) -> None:
    """The CE checked the token's signature with the issuer's keys (JWKS fetched over TLS);
    a subject it does not map, or another audience, is refused before anything is sent.
    (Each refusal in a fresh process: the bindings reuse an authenticated session.)"""
    assert backend.check().reachable
    assert "/jwks" in htcondor_ce.issuer.requests
    for bad in (htcondor_ce.token(sub="mallory"), htcondor_ce.token(aud="https://other-ce.test")):
        token = tmp_path / "bad-token"
        token.write_text(bad)
        token.chmod(0o600)
        settings = {**ce_settings, "token_file": str(token)}
        proc = subprocess.run(
            [sys.executable, "-c", REFUSAL_PROBE, json.dumps(settings), str(tmp_path)],
            capture_output=True, text=True, timeout=60, check=False,
            cwd=Path(__file__).resolve().parents[2], env={**os.environ, "CONDOR_CONFIG": "/dev/null"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        native_id, message, delivery = json.loads(proc.stdout.splitlines()[-1])
        assert native_id is None
        assert delivery == Delivery.NOT_SENT.name, message
        assert "locating the schedd" in message


def test_grid_universe_job_is_not_routed_by_the_ce(backend: HTCondorCEBackend, tmp_path: Path) -> None:
    """Why the client submits vanilla jobs: the CE's JobRouter routes the vanilla job that a
    ``condor_submit -remote`` (or a gridmanager) leaves on its schedd; a grid-universe job put
    there directly is never routed (it would need the client's own schedd and gridmanager)."""
    htc = bindings()
    schedd = backend.schedd(backend.token_file(backend.token()))
    host, port = backend.settings.ce.split(":")
    common = f"executable = /bin/true\ninitialdir = {tmp_path}\nshould_transfer_files = YES\n"
    ids = {}
    grid = f"universe = grid\ngrid_resource = condor {host} {host}:{port}\n"
    for name, lines in (("vanilla", "universe = vanilla\n"), ("grid", grid)):
        sub = htc.Submit(lines + common + "queue x from (\n1\n)\n")
        result = schedd.submit(sub, spool=True, itemdata=iter([{"x": "1"}]))
        schedd.spool(result)
        ids[name] = result.cluster()

    def routed(cluster: int) -> bool:
        ads = schedd.query(constraint=f"ClusterId == {cluster}", projection=["RoutedToJobId"])
        return bool(ads) and isinstance(ads[0].get("RoutedToJobId"), str)

    try:
        wait_for(lambda: routed(ids["vanilla"]), timeout=60, step=0.5)
        time.sleep(3)  # more router passes than the vanilla job needed
        assert not routed(ids["grid"])
        (grid,) = schedd.query(constraint=f"ClusterId == {ids['grid']}", projection=["JobStatus"])
        assert grid["JobStatus"] == 1  # idle on the CE, going nowhere
    finally:
        schedd.act(htc.JobAction.Remove, f"ClusterId == {ids['vanilla']} || ClusterId == {ids['grid']}")


def test_cli_hello_on_the_ce(cli: Cli, cops_home: Path, ce_settings: dict[str, Any], ce_token: Path) -> None:
    """The README's first job on the CE: the payload's output printed by ``--wait``; what ran (the
    image's ``.flat/`` digest, the runtime, the node, the exit code) is in the store, back with
    the job from the refresh that saw it end, before any ``get``."""
    configure_backend(cops_home, "htcondor-ce", ce_settings)
    res = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "htcondor-ce", "--wait", timeout=300)
    assert res.code == 0, res.stderr
    assert "Hello from Linux in a container, job hello" in res.stdout
    client = Client()
    (row,) = client.jobs()  # the store as `list --json` prints it: no backend asked, no `get` run
    flat = "sha256:" + (Path(ce_settings["image_root"]) / PUBLIC).resolve().name
    assert (row["image_digest"], row["node"]) == (flat, socket.gethostname())
    ran = client.show(row["id"])  # what ran came back with the job: the wrapper's report
    assert (ran["image"]["digest"], ran["image"]["digest_source"]) == (flat, "flat-directory")
    assert ran["runtime"]["name"] == row["runtime"] and row["runtime"] in worker.load_pilot().RUNTIMES
    assert (ran["node"]["hostname"], ran["exit_code"]) == (socket.gethostname(), 0)
