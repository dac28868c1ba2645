"""A real `cops-grid submit` process dies in the middle of a DiracX submission (after the
sandbox upload and the first batch); `cops-grid sync` must find the accepted jobs by name
and submit only the others: no job exists twice on the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from computeops_grid.backends.dirac.diracx_client import DiracXClient
from tests.conftest import Cli
from tests.services.diracx import DiracXServer

pytestmark = [pytest.mark.service, pytest.mark.slow]

# the process exits abruptly (os._exit, no clean-up) when it is about to send its 2nd batch
CRASHING_SUBMIT = """
import os, sys
from computeops_grid.backends.dirac import diracx_client
real, sent = diracx_client.DiracXClient.submit, []
def submit(self, texts):
    if sent:
        os._exit(9)
    sent.append(len(texts))
    return real(self, texts)
diracx_client.DiracXClient.submit = submit
from computeops_grid.cli.main import run
sys.argv = ["cops-grid", "submit", sys.argv[1], "--backend", "diracx"]
run()
"""

JOB = """name: crash-${i}
image: docker://busybox:latest
command: sh
arguments: [-c, 'echo ${i}']
parameters:
  i: {start: 1, stop: 45}
"""


def test_sync_after_a_crash_mid_submission_does_not_duplicate(  # noqa: PLR0917 - fixtures
    cli: Cli, cops_home: Path, diracx_server: DiracXServer, alice: Path, client: DiracXClient, tmp_path: Path
) -> None:
    (cops_home / "config.yaml").write_text(
        f"backends:\n  diracx:\n    url: {diracx_server.url}\n    credentials: {alice}\n"
    )
    job_file = tmp_path / "crash.yaml"
    job_file.write_text(JOB)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_SUBMIT, str(job_file)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "COPS_GRID_HOME": str(cops_home)}, check=False,
    )  # fmt: skip
    assert crashed.returncode == 9, crashed.stderr

    def server_names() -> Counter[str]:
        rows = client.search([{"parameter": "JobName", "operator": "like", "value": "crash-%"}], ["JobName"])
        return Counter(str(r["JobName"]) for r in rows)

    assert sum(server_names().values()) == 20  # the first batch got through before the crash
    stuck = json.loads(cli("list", "--json").stdout)
    assert Counter(j["state"] for j in stuck) == {"submitting": 45}

    res = cli("sync", "--json")
    assert res.code == 0, res.stderr
    report = json.loads(res.stdout)
    assert (report["found"], report["reset"], report["submitted"]) == (20, 25, 25)
    names = server_names()
    assert len(names) == 45
    assert set(names.values()) == {1}  # nothing submitted twice
    jobs = json.loads(cli("list", "--json").stdout)
    assert Counter(j["state"] for j in jobs) == {"queued": 45}
