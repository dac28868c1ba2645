"""Batch script generation and parsers of captured Slurm output (no service needed)."""

from __future__ import annotations

import shlex
from pathlib import Path

from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
from computeops_grid.backends.slurm.script import Directives, array_spec, job_script, sbatch_options
from computeops_grid.backends.slurm.status import parse_sacct, parse_squeue, to_status
from computeops_grid.jobs.state import JobState
from tests.services.grid_jobs import record


def test_directives_from_resources_and_options() -> None:
    job = record(
        "true",
        resources={"cores": 4, "memory": "3GiB", "walltime": "1-02:30", "gpus": 2},
        backend_options={"qos": "long"},
    )
    opts = sbatch_options(job, Directives(partition="gpu", account="phys", gpu_flag="gres"))
    assert "--cpus-per-task=4" in opts
    assert "--mem=3072M" in opts
    assert "--time=1-02:30:00" in opts
    assert "--gres=gpu:2" in opts
    assert {"--partition=gpu", "--account=phys", "--qos=long"} <= set(opts)
    assert "--gpus=2" in sbatch_options(job, Directives(gpu_flag="gpus"))


def test_job_script_quotes_the_wrapper_argv(tmp_path: Path) -> None:
    job = record("echo 'it''s'; rm -rf / $(whoami)", environment={"A": "x y;z"})
    text = job_script(job, tmp_path / "w d", python="python3", image_root="/img")
    line = next(x for x in text.splitlines() if x.startswith("python3"))
    argv = shlex.split(line)
    assert argv[argv.index("--") + 1 :] == ["/bin/sh", "-c", "echo 'it''s'; rm -rf / $(whoami)"]
    assert argv[argv.index("--env") + 1] == "A=x y;z"
    assert f"cd {shlex.quote(str(tmp_path / 'w d'))}" in text


def test_dry_run_describes_an_array_and_writes_nothing(tmp_path: Path) -> None:
    ctx = BackendContext(home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=tmp_path, pilot=tmp_path / "p")
    backend = SlurmBackend(SlurmSettings(partition="debug"), ctx)
    jobs = [record("true", bulk_id="b1", index=i) for i in (0, 1, 2, 5)]
    text = backend.describe(jobs)
    assert "#SBATCH --array=0-2,5" in text
    assert "#SBATCH --job-name=cops-b1" in text
    assert "#SBATCH --partition=debug" in text
    assert not (tmp_path / "jobs").exists()


def test_array_spec() -> None:
    assert array_spec([0, 1, 2, 3]) == "0-3"
    assert array_spec([7]) == "7"
    assert array_spec([9, 1, 2, 3, 7, 10]) == "1-3,7,9-10"


def test_parse_squeue_captured() -> None:
    captured = "1_0|PENDING|None|cops-b1\n1_1|RUNNING|None|cops-b1\n5|FAILED|NonZeroExitCode|cops-abc\n"
    jobs = parse_squeue(captured)
    assert [(j.native_id, j.array_index) for j in jobs] == [("1_0", 0), ("1_1", 1), ("5", None)]
    assert jobs[2].reason == "NonZeroExitCode"


def test_parse_sacct_and_states() -> None:
    parsed = parse_sacct("12|COMPLETED|0:0\n13|CANCELLED by 0|0:15\n14_2|FAILED|42:0\n")
    assert parsed == {"12": ("COMPLETED", 0), "13": ("CANCELLED", 0), "14_2": ("FAILED", 42)}
    info = to_status("COMPLETED", "None", 5)
    assert info is not None
    assert (info.state, info.exit_code) == (JobState.FAILED, 5)
    assert to_status("WEIRD_NEW_STATE", "", None) is None
