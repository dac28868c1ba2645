"""Named resources: several of one type side by side, each job reaching its own.

Real Slurm and A-REX (session fixtures), the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES, Cli
from tests.services.slurm import world_dir

pytestmark = [pytest.mark.service]


def write_resources(cli: Cli, resources: dict[str, dict[str, Any]], **extra: Any) -> None:
    config = cli.home / "config.yaml"
    data = yaml.safe_load(config.read_text()) or {}
    data.setdefault("resources", {}).update(resources)
    data.update(extra)
    config.write_text(yaml.safe_dump(data))


@pytest.fixture
def second_jobs_dir() -> Iterator[Path]:
    path = world_dir("cops-lab-b-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _hello_with_output(tmp_path: Path, backend: str | None = None) -> Path:
    job = {
        "name": "hello",
        "image": "docker://busybox:latest",
        "command": "sh",
        "arguments": ["-c", 'echo "ran on $(hostname)"; echo done > result.txt'],
        "outputs": ["result.txt"],
    }
    if backend:
        job["backend"] = backend
    path = tmp_path / f"hello-{backend or 'cli'}.yaml"
    path.write_text(json.dumps(job))
    return path


def test_two_slurm_and_two_arc_resources_side_by_side(
    cli: Cli,
    tmp_path: Path,
    slurm_settings: dict[str, Any],
    arc_settings: dict[str, Any],
    second_jobs_dir: Path,
) -> None:
    write_resources(
        cli,
        {
            "lab": {"type": "slurm", **slurm_settings},
            "lab-b": {"type": "slurm", **slurm_settings, "jobs_dir": str(second_jobs_dir)},
            "ce-rest": {"type": "arc", **arc_settings, "transport": "rest"},
            "ce-tools": {"type": "arc", **arc_settings, "transport": "cli"},
        },
    )
    ids: dict[str, str] = {}
    for name in ("lab", "lab-b", "ce-rest", "ce-tools"):
        result = cli("submit", str(_hello_with_output(tmp_path)), "--backend", name, "--wait", timeout=300)
        assert result.code == 0, f"{name}: {result.stderr}"
        assert "ran on" in result.stdout, f"{name}: {result.stdout}"
        ids[name] = result.stdout.split()[0]
    rows = {r["id"]: r for r in cli("list", "--json").json()}  # type: ignore[union-attr]
    for name, job_id in ids.items():
        assert rows[job_id]["backend"] == name  # the store records the resource
        assert rows[job_id]["state"] == "completed"
    # each resource's own settings were used: lab-b's job directory is its own
    assert (second_jobs_dir / ids["lab-b"]).is_dir()
    assert not (second_jobs_dir / ids["lab"]).exists()
    for name, job_id in ids.items():  # get reaches the right cluster or CE
        out = tmp_path / "out" / name
        got = cli("get", job_id, "-o", str(out), timeout=120)
        assert got.code == 0, f"{name}: {got.stderr}"
        assert (out / "result.txt").read_text() == "done\n"


def test_a_job_file_names_its_resource(cli: Cli, tmp_path: Path, slurm_settings: dict[str, Any]) -> None:
    write_resources(cli, {"lab": {"type": "slurm", **slurm_settings}})
    result = cli("submit", str(_hello_with_output(tmp_path, backend="lab")), "--wait", timeout=180)
    assert result.code == 0, result.stderr
    (row,) = cli("list", "--json").json()  # type: ignore[misc]
    assert row["backend"] == "lab" and row["state"] == "completed"


def test_unknown_names_list_resources_and_types(cli: Cli) -> None:
    write_resources(cli, {"lab": {"type": "slurm"}})
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "nosuch")
    assert result.code == 3
    assert "no resource or backend type named 'nosuch'; resources: lab; types:" in result.stderr
    assert cli("list", "--json").json() == []


def test_a_resource_without_type_is_refused_naming_it(cli: Cli) -> None:
    (cli.home / "config.yaml").write_text("resources:\n  lab:\n    partition: debug\n")
    result = cli("list")
    assert result.code == 3
    assert "resources" in result.stderr and "resource 'lab' needs `type:`" in result.stderr


def test_a_bad_setting_names_the_resource(cli: Cli) -> None:
    write_resources(cli, {"lab": {"type": "slurm", "gpu_flag": "sometimes"}})
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "lab")
    assert result.code == 3
    assert "resources.lab.gpu_flag" in result.stderr


def test_a_missing_slurm_conf_is_refused_before_anything_is_stored(cli: Cli, tmp_path: Path) -> None:
    # sbatch itself takes about a minute to say only "Unable to process configuration file"
    missing = tmp_path / "no-such-slurm.conf"
    write_resources(cli, {"lab": {"type": "slurm", "slurm_conf": str(missing)}})
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "lab")
    assert result.code == 3, result.stderr
    assert f"slurm_conf {missing} is not a file on this machine" in result.stderr
    assert "nothing was submitted" in result.stderr
    assert cli("list", "--json").json() == []


@pytest.fixture
def silent_ce() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung CE)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_one_dead_ce_does_not_make_the_listing_wait(
    cli: Cli, silent_ce: int, arc_settings: dict[str, Any], slurm_settings: dict[str, Any]
) -> None:
    write_resources(
        cli,
        {
            "hung": {
                **arc_settings,
                "type": "arc",
                "ce": f"https://127.0.0.1:{silent_ce}/arex",
                "timeout": 60,
            },
            "good": {"type": "arc", **arc_settings},
            "lab": {"type": "slurm", **slurm_settings},
        },
    )
    started = time.monotonic()
    result = cli("backends", "--json", "--timeout", "3", timeout=60)
    took = time.monotonic() - started
    assert result.code == 0, result.stderr
    rows = {r["name"]: r for r in result.json()}  # type: ignore[union-attr]
    assert rows["hung"]["reachable"] is False and rows["hung"]["detail"] == "no answer within 3 s"
    assert rows["good"]["reachable"] is True and rows["good"]["credential"] == "ok"
    assert rows["lab"]["reachable"] is True and rows["lab"]["type"] == "slurm"
    assert took < 20  # the hung CE's 60 s timeout was not waited for (process start included)
