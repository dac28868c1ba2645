"""A CE that accepts a job and then loses the connection: one job, found again by ``sync``.

Real A-REX behind ``tests/services/relay.Relay`` (TLS-terminating, forwards every request
to the CE and, once armed, closes the client's connection after the CE has answered
the submit). The submit runs in its own process, as ``cops-grid submit`` would, so its
claim on the jobs dies with it; ``sync`` in this process then looks the job up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from computeops_grid.backends.arc.rest import ArcRest
from computeops_grid.jobs.state import JobState
from computeops_grid.logic.follow import refresh
from computeops_grid.logic.session import Session
from computeops_grid.logic.sync import sync
from tests.conftest import configure_backend
from tests.services.arc import CERTS, HOSTCERT, HOSTKEY, ArcCE
from tests.services.grid_jobs import wait_for
from tests.services.relay import Relay

pytestmark = [pytest.mark.service, pytest.mark.slow]
HELLO = Path(__file__).resolve().parents[2] / "etc" / "examples" / "hello.yaml"
SUBMIT = """
import json, sys
from pathlib import Path
from computeops_grid.logic.session import Session
from computeops_grid.logic.submit import records_from_files, submit_records
with Session.open() as session:
    records = records_from_files([Path(sys.argv[1])], session, "arc")
    report = submit_records(session, records)
print(json.dumps({"ids": [r.id for r in records], "submitted": report.submitted, "unknown": report.unknown}))
"""


@pytest.fixture
def relay(arc_ce: ArcCE, good_proxy: Path) -> Iterator[Relay]:
    r = Relay(
        (arc_ce.host, arc_ce.port), proxy=good_proxy, host_cert=HOSTCERT, host_key=HOSTKEY, ca_dir=CERTS
    )
    yield r
    r.close()


def test_lost_submit_reply_gives_one_job_found_by_sync(
    arc_ce: ArcCE, relay: Relay, good_proxy: Path, cops_home: Path, arc_settings: dict[str, Any]
) -> None:
    configure_backend(cops_home, "arc", {**arc_settings, "ce": f"https://{arc_ce.host}:{relay.port}/arex"})
    relay.drop_reply_to("POST", "jobs?action=new")

    proc = subprocess.run(
        [sys.executable, "-c", SUBMIT, str(HELLO)],
        capture_output=True, text=True, timeout=180, check=False, env={**os.environ},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (job_id,) = report["ids"]
    assert report == {"ids": [job_id], "submitted": [], "unknown": [job_id]}
    assert "dropped the connection" in proc.stderr  # logged: run `cops-grid sync`
    assert [d.split(" -> ")[1] for d in relay.dropped] == ["201"]  # the CE did accept it

    with Session.open() as session:
        assert session.store.get(job_id).state is JobState.SUBMITTING
        result = sync(session)
        assert result.found == [job_id]
        assert result.reset == []
        assert result.submit.submitted == []  # nothing submitted again
        record = session.store.get(job_id)
        assert record.native_id is not None
        assert record.state in (JobState.QUEUED, JobState.RUNNING, JobState.COMPLETED)

        direct = ArcRest(arc_ce.url, good_proxy, str(CERTS))
        names = [a.get("Name") for a in direct.activities(direct.list_jobs()).values()]
        assert names.count(f"cops-{job_id}") == 1  # exactly one job on the CE

        # the inputs the lost reply kept the client from uploading were sent by the lookup
        def finished() -> bool:
            return refresh(session, [job_id])[0].state.final

        wait_for(finished, timeout=150, step=2.0)
        assert session.store.get(job_id).state is JobState.COMPLETED
        logs = session.backend("arc").logs(session.store.get(job_id))
        assert "Hello from Linux in a container, job hello" in logs
