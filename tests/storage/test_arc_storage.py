"""Grid storage on the real ARC CE: A-REX's own data staging fetches the XRootD input (its
xrootd DMC, nordugrid-arc-plugins-xrootd), the wrapper stores the outputs after the payload
and checks their checksums, as on every backend.

A missing input is A-REX's to report ("Failed in data staging: ... <URL> ..."), before the job
runs. A-REX and its Slurm run in the main network namespace and reach the XRootD server through the
loopback-only relay (tests/services/netns_relay.py). The job runs as ``nobody`` (the CE's
mapping), so it has no S3 keys: S3 outputs on ARC are covered by the wrapper code the local and
Slurm tests run, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from computeops_grid.backends.arc import desc
from computeops_grid.backends.arc.backend import ArcBackend
from computeops_grid.jobs import exit_codes
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from tests.arc.conftest import make_arc
from tests.services.arc import ArcCE
from tests.services.grid_jobs import record, settle, submit_ok
from tests.services.xrootd import XRootD, adler32

pytestmark = [pytest.mark.service, pytest.mark.slow]

SCRIPT = "cat in.txt > hist-1.root; echo arc >> hist-1.root"


def session_report(arc: ArcBackend, job: JobRecord) -> Any:
    """The wrapper's report, read from the job's session directory on the CE."""
    assert job.native_id is not None
    return json.loads(arc.rest.download(job.native_id.rsplit("/", 1)[-1], "cops-report.json"))


def stored(*entries: dict[str, str]) -> Any:
    return list(entries)


def test_arc_stages_the_xrootd_input_and_the_wrapper_stores_checked_outputs(
    arc_ce: ArcCE, good_proxy: Path, tmp_path: Path, xrootd: XRootD
) -> None:
    arc: ArcBackend = make_arc(arc_ce.url, good_proxy, tmp_path)
    source = xrootd.put("/store/data/arc/in.txt", b"arc input\n")
    good = record(SCRIPT, name="good", inputs=[source], outputs=stored(
        {"path": "hist-*.root", "to": f"{xrootd.url}//store/user/arc/"},
    ))  # fmt: skip
    liar = record(SCRIPT, name="liar", inputs=[source], outputs=stored(
        {"path": "hist-*.root", "to": f"{xrootd.url}//store/liar/arc/"},
    ))  # fmt: skip
    assert f"<Source><URI>{source}</URI></Source>" in desc.adl(good, arc.opts)  # A-REX fetches it
    assert not any(a.startswith("--stage-in") for a in desc.wrapper_args(good, arc.opts))
    missing = record(SCRIPT, name="missing", inputs=[f"{xrootd.url}//store/data/arc/nothere.txt"])
    submit_ok(arc, [good, liar, missing])
    states = settle(arc, [good, liar, missing], timeout=240, step=1.0)
    assert states == {good.id: JobState.COMPLETED, liar.id: JobState.FAILED, missing.id: JobState.FAILED}
    gone = arc.status([missing])[missing.id]  # A-REX's own staging failed, before the job ran
    assert gone.exit_code is None
    assert f"Failed checking source replica {xrootd.url}//store/data/arc/nothere.txt" in gone.message

    hist = xrootd.path("/store/user/arc/hist-1.root").read_bytes()
    assert hist == b"arc input\narc\n"
    report = session_report(arc, good)
    assert report["stage_in"] == []  # A-REX staged the input, not the wrapper
    [entry] = report["stage_out"]
    assert entry["checksum"] == {"algorithm": "adler32", "local": adler32(hist), "remote": adler32(hist)}

    info = arc.status([liar])[liar.id]
    assert info.exit_code == exit_codes.code("stage-out-failed"), info
    fetched = {p.name for p in arc.fetch_outputs(liar, tmp_path / "liar")}
    assert "hist-1.root" in fetched  # kept in the session directory: `cops-grid get` returns it
    bad = session_report(arc, liar)
    assert (bad["payload_exit_code"], bad["stage_out"][0]["kind"]) == (0, "mismatch")
    assert f"{xrootd.url}//store/liar/arc/hist-1.root (mismatch)" in arc.logs(liar)
