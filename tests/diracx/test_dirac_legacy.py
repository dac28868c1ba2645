"""The legacy DIRAC backend (dirac-wms-* commands). The DIRAC client cannot be installed on
this machine, so these tests run it against stand-in executables on PATH
(tests/diracx/standin/dirac_standin.py) that replay the commands' documented options and
output and parse the JDL with DIRAC's own parser; the payload runs through the real wrapper."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.dirac.legacy import DiracBackend, DiracSettings, parse_status
from computeops_grid.errors import ToolMissing
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

STANDIN = Path(__file__).parent / "standin"
COMMANDS = ("dirac-wms-job-submit", "dirac-wms-job-status", "dirac-wms-job-get-jdl",
            "dirac-wms-job-kill", "dirac-wms-job-get-output", "standin-run")  # fmt: skip


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_root: Path) -> Path:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for cmd in COMMANDS:
        shim = bin_dir / cmd
        shim.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(STANDIN)!r})\n"
            f"import dirac_standin\ndirac_standin.main({cmd!r}, sys.argv[1:])\n"
        )
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("DIRAC_STANDIN_STATE", str(state))
    monkeypatch.setenv("COPS_PILOT_IMAGE_ROOT", str(image_root))
    return bin_dir


@pytest.fixture
def backend(tmp_path: Path, image_root: Path) -> DiracBackend:
    ctx = BackendContext(
        home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=image_root, pilot=worker.pilot()
    )
    return DiracBackend(DiracSettings(python=sys.executable), ctx)


def jobs(n: int, code: int = 0) -> list[JobRecord]:
    spec = JobSpec(
        name="legacy", image="docker://busybox:latest", command="sh",
        arguments=["-c", f"echo legacy > out.txt; echo on-stdout; exit {code}"], outputs=["out.txt"],
    )  # fmt: skip
    return [JobRecord(id=f"1e9ac7{i:06d}", spec=spec, backend="dirac") for i in range(n)]


def test_parse_status_reads_the_documented_line() -> None:
    line = "JobID=2 Status=Done; MinorStatus=Execution Complete; Site=EELA.UTFSM.cl;\n"
    assert parse_status(line) == {
        "2": {"Status": "Done", "MinorStatus": "Execution Complete", "Site": "EELA.UTFSM.cl"}
    }


def test_submit_run_status_get_and_lookup(backend: DiracBackend, standin: Path, tmp_path: Path) -> None:
    ok, bad = jobs(1) + jobs(1, code=4)
    bad.id = "1e9ac7ffffff"
    results = backend.submit([ok, bad])
    assert [r.native_id for r in results] == ["1", "2"]
    for rec, res in zip((ok, bad), results):
        rec.native_id = res.native_id
    assert {s.state for s in backend.status([ok, bad]).values()} == {JobState.QUEUED}
    for native in ("1", "2"):
        subprocess.run([str(standin / "standin-run"), native], check=True)
    states = backend.status([ok, bad])
    assert (states[ok.id].state, states[ok.id].exit_code) == (JobState.COMPLETED, 0)
    assert (states[bad.id].state, states[bad.id].exit_code) == (JobState.FAILED, 4)
    got = backend.fetch_outputs(ok, tmp_path / "got")
    assert sorted(p.name for p in got) == ["cops-report.json", "out.txt", "std.err", "std.out"]
    assert (tmp_path / "got" / "out.txt").read_text() == "legacy\n"
    assert "on-stdout" in backend.logs(ok)
    (never,) = jobs(1)
    never.id = "1e9ac7000abc"
    found = backend.lookup([ok, bad, never])  # after a crash: by JobGroup, then JobName
    assert {k: v.native_id if v else None for k, v in found.items()} == {
        ok.id: "1",
        bad.id: "2",
        never.id: None,
    }


def test_cancel_kills(backend: DiracBackend, standin: Path) -> None:
    (rec,) = jobs(1)
    rec.native_id = backend.submit([rec])[0].native_id
    backend.cancel([rec])
    assert backend.status([rec])[rec.id].state == JobState.CANCELLED


def test_without_the_dirac_client_the_error_says_what_to_do(
    backend: DiracBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    first, second = backend.submit(jobs(2))
    assert isinstance(first.error, ToolMissing)
    assert "`dirac-wms-job-submit` is not installed" in first.error.message
    assert first.error.hint is not None and "dirac-proxy-init" in first.error.hint
    assert second.error is not None and second.error.transient  # not sent after the first failed
    assert not backend.check().reachable
