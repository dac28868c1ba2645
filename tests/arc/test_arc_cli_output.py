"""Parsers of the arc* tools' output, on output captured from the real tools and A-REX 6.17."""

from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.backends.arc import states as arc_states
from computeops_grid.backends.arc.backend import ArcBackend, ArcSettings
from computeops_grid.backends.arc.cli import ArcCli
from computeops_grid.backends.arc.cli_output import parse_arcinfo, parse_arcstat, parse_arcsub, tool_error
from computeops_grid.backends.arc.desc import DescOptions, xrsl
from computeops_grid.backends.base import BackendContext
from computeops_grid.errors import ToolMissing
from computeops_grid.jobs.state import JobState
from tests.services.grid_jobs import record

DATA = Path(__file__).with_name("data") / "arc_cli"
JOB = "https://vm:34155/arex/rest/1.0/jobs/"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def test_arcstat_long_failed_and_running() -> None:
    jobs = parse_arcstat(sample("arcstat-l.txt"))
    failed = jobs[JOB + "UZCODmzOUqAoOSAtDmABFKDmABFKDmABFKDm4hMKDmABFKDmK6Hjtn"]
    assert (failed.name, failed.state, failed.specific_state, failed.exit_code) == (
        "cops-aaa1",
        "Failed",
        "FAILED",
        42,
    )
    assert failed.errors == ["LRMS error: (42) Job finished with wrong exit code - 42 != 0"]
    running = jobs[JOB + "NfcMDm1OUqAoOSAtDmABFKDmABFKDmABFKDm4hMKDmBBFKDmmDALPo"]
    assert (running.native_state, running.exit_code, running.errors) == ("RUNNING", None, [])


def test_arcstat_states_map_onto_job_states() -> None:
    jobs = list(parse_arcstat(sample("arcstat-l-killed.txt")).values())
    failed = arc_states.to_status(jobs[0].native_state, jobs[0].exit_code, "; ".join(jobs[0].errors))
    killing = arc_states.to_status(jobs[1].native_state, jobs[1].exit_code)
    assert failed is not None
    assert killing is not None
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 42)
    assert "(42)" in failed.message
    assert (killing.state, killing.native_state) == (JobState.RUNNING, "KILLING")


def test_arcsub_partial_submission_names_the_refused_job() -> None:
    out = parse_arcsub(sample("arcsub-partial.txt"))
    assert [i.rsplit("/", 1)[1][:8] for i in out.ids] == ["HCeNDmdR", "TD7NDmhR"]
    assert out.not_submitted == ["cops-bad3"]
    assert parse_arcsub("").ids == []


def test_arcinfo_long_lists_lrms_queues_and_rest() -> None:
    info = parse_arcinfo(sample("arcinfo-l.txt"))
    assert (info.name, info.lrms, info.queues) == ("vm", "fork", ["fork"])
    assert "org.nordugrid.arcrest" in info.interfaces


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("arcsub-down-stderr.txt", "Failed to establish connection: TCP: GENERIC_ERROR"),
        ("arcsub-noproxy-stderr.txt", "Failed configuration initialization"),
        ("arcsub-wrongvo-stderr.txt", "no resource returned any information"),
    ],
)
def test_tool_error_keeps_the_error_lines(name: str, expected: str) -> None:
    message = tool_error(sample(name))
    assert expected in message
    assert "WARNING" not in message


def test_missing_tool_is_a_clear_error(tmp_path: Path) -> None:
    cli = ArcCli(
        "https://vm:1/arex", tmp_path / "proxy", "/nonexistent", tmp_path / "jobs.dat",
        opts=DescOptions(), pilot=tmp_path / "pilot",
    )  # fmt: skip
    with pytest.raises(ToolMissing, match="arc-no-such-tool` is not installed") as info:
        cli.run("arc-no-such-tool")
    assert "transport: rest" in (info.value.hint or "")
    assert info.value.transient and not info.value.retry_soon  # the same meaning as on Slurm


def test_xrsl_for_arcsub_names_local_sources(tmp_path: Path) -> None:
    context = BackendContext(home=tmp_path, jobs_dir=tmp_path, image_root=tmp_path, pilot=tmp_path / "p.py")
    backend = ArcBackend(ArcSettings(ce="arc://ce.example.org", transport="cli"), context)
    job = record("true")
    text = xrsl(job, backend.opts, sources={"cops_pilot.py": "/abs/cops_pilot.py"})
    assert '("cops_pilot.py" "/abs/cops_pilot.py")' in text
    assert backend.cli.ce == "https://ce.example.org/arex"
    assert backend.cli.joblist == tmp_path / "arc" / "jobs.dat"
