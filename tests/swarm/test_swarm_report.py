"""What ran on Swarm, from the engine (no wrapper runs there): the image id the engine ran, the
node, the engine's version, start, end and exit code; a service the backend does not know is
left out. Real private dockerd in a one-node swarm."""

from __future__ import annotations

import socket

import pytest

from computeops_grid.backends.base import SupportsReports
from computeops_grid.backends.swarm.backend import SwarmBackend
from computeops_grid.jobs.state import JobState
from tests.swarm.helpers import hello, records, submitted, wait_final

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_reports_give_the_engine_image_id_node_and_times(swarm: SwarmBackend) -> None:
    assert isinstance(swarm, SupportsReports)
    jobs = submitted(swarm, records(hello(arguments=["-c", "exit 4"])))
    never = records(hello())[0]  # never submitted: the engine knows nothing of it
    assert wait_final(swarm, jobs)[jobs[0].id].state is JobState.FAILED
    reports = swarm.reports([*jobs, never])
    assert set(reports) == {jobs[0].id}
    report = reports[jobs[0].id]
    engine = swarm.client()
    ran = report["engine_image"]["ref"]
    assert report["image_digest"] == engine.api.inspect_image(ran)["Id"]  # type: ignore[no-untyped-call]
    assert report["image_digest"].startswith("sha256:")
    info = engine.info()
    assert report["runtime"] == "docker-swarm"
    assert report["runtime_version"] == info["ServerVersion"]
    assert report["node"]["hostname"] == info["Name"] == socket.gethostname()
    assert report["node"]["kernel"] == info["KernelVersion"]
    assert report["exit_code"] == 4
    assert abs(report["payload_ended_at"] - report["payload_started_at"]) < 60
    assert report["usage"]["wall_s"] >= 0
    assert report["command"] == ["sh", "-c", "exit 4"]
