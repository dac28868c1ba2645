"""The Python API on the real local backend: one process, several clients, typed errors, no output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from computeops_grid import Client, JobSpec
from computeops_grid.api import Submission
from computeops_grid.errors import JobFileError, JobNotFound, UnknownBackend
from tests.conftest import Cli

SQUARE: dict[str, Any] = {
    "name": "square-${x}",
    "image": "docker://busybox:latest",
    "command": "sh",
    "arguments": ["-c", "echo $((${x} * ${x})) > square.txt"],
    "outputs": ["square.txt"],
    "parameters": {"x": [2, 3, 4]},
    "resources": {"memory": "256MiB", "walltime": 10},
}


def make_home(path: Path, image_root: Path, extra: str = "") -> Path:
    path.mkdir()
    (path / "config.yaml").write_text(f"image_root: {image_root}\n{extra}")
    return path


def test_parametric_job_built_in_code_runs_and_its_outputs_come_back_without_printing(
    cops_home: Path, cli: Cli, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    client = Client()
    handed: list[tuple[int, int]] = []
    polls: list[list[str]] = []
    sub = client.submit(
        JobSpec.model_validate(SQUARE), progress=lambda done, total: handed.append((done, total))
    )
    assert len(sub.submitted) == 3
    assert handed[-1] == (3, 3)
    assert len({job["bulk_id"] for job in sub.jobs}) == 1  # one parametric group
    jobs = client.wait(sub, timeout=120, progress=lambda infos: polls.append([i["state"] for i in infos]))
    assert [(j["name"], j["state"], j["exit_code"]) for j in jobs] == [
        ("square-2", "completed", 0), ("square-3", "completed", 0), ("square-4", "completed", 0),
    ]  # fmt: skip
    assert polls[-1] == ["completed"] * 3
    squares = {}
    for job in jobs:
        files = client.outputs(job, tmp_path / job["id"])
        assert tmp_path / job["id"] / "square.txt" in files
        squares[job["name"]] = (tmp_path / job["id"] / "square.txt").read_text()
    assert squares == {"square-2": "4\n", "square-3": "9\n", "square-4": "16\n"}
    assert capfd.readouterr() == ("", "")  # the library printed nothing
    # the records are those the CLI prints as JSON (newest first, as `list` orders them)
    listed = cli("list", "--json")
    assert listed.code == 0, listed.stderr
    assert listed.json() == client.jobs()
    assert sorted(j["id"] for j in client.jobs()) == sorted(sub.ids)


def test_two_clients_with_different_homes_in_one_process(
    tmp_path: Path, image_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPS_GRID_HOME", str(tmp_path / "from-env"))
    here = make_home(tmp_path / "a", image_root, "resources:\n  here:\n    type: local\n")
    there = make_home(tmp_path / "b", image_root)
    first, second = Client(here), Client(there)
    hello = dict(SQUARE, name="hello", parameters={}, arguments=["-c", "echo hi > square.txt"])
    sub = first.submit(hello, backend="here")
    assert first.wait(sub, timeout=60)[0]["state"] == "completed"
    assert second.jobs() == []  # another store
    assert [j["backend"] for j in first.jobs()] == ["here"]
    with pytest.raises(UnknownBackend) as err:  # another configuration: no resource `here`
        second.submit(hello, backend="here")
    assert "here" in err.value.message
    assert err.value.hint
    assert second.jobs() == []  # refused before anything was stored
    assert (here / "jobs.sqlite").is_file()
    assert not (tmp_path / "from-env").exists()  # neither client read COPS_GRID_HOME
    # a client without a home pins $COPS_GRID_HOME when it is made: moving it later moves nothing
    pinned = Client()
    monkeypatch.setenv("COPS_GRID_HOME", str(there))
    assert pinned.home == tmp_path / "from-env"
    assert pinned.jobs() == []
    assert Client().home == there


def test_unknown_job_id_raises_job_not_found_with_a_hint(cops_home: Path) -> None:
    client = Client()
    for call in (client.status, client.logs, client.outputs, client.cancel, client.wait):
        with pytest.raises(JobNotFound) as err:
            call("0123456789ab")
        assert "0123456789ab" in err.value.message
        assert err.value.hint


def test_invalid_jobs_raise_job_file_error_naming_the_field(cops_home: Path, tmp_path: Path) -> None:
    client = Client()
    with pytest.raises(JobFileError) as err:
        client.submit(dict(SQUARE, resources={"memory": "lots"}))
    assert (err.value.path, err.value.field) == ("<python>", "resources.memory")
    assert "2GiB" in err.value.reason
    with pytest.raises(JobFileError) as err:
        client.load([SQUARE, dict(SQUARE, colour="blue")])
    assert (err.value.path, err.value.field) == ("<python>[1]", "colour")
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(dict(SQUARE, resources={"cores": 0})))
    with pytest.raises(JobFileError) as err:
        client.submit(bad)
    assert (err.value.path, err.value.line, err.value.field) == (str(bad), 1, "resources.cores")
    assert client.jobs() == []  # nothing stored


def test_wait_timeout_returns_running_jobs_and_cancel_reports_each_outcome(cops_home: Path) -> None:
    client = Client()
    sleeper = {"name": "nap", "image": "docker://busybox:latest", "command": "sleep", "arguments": ["313"]}
    sub: Submission = client.submit(sleeper)
    (job,) = client.wait(sub, timeout=0.2)
    assert job["state"] in ("queued", "running")
    done = client.cancel(sub)
    assert [(j["id"], j["state"], j["outcome"]) for j in done.jobs] == [(job["id"], "cancelled", "cancelled")]
    again = client.cancel(sub)  # an ended job keeps its state: nothing to cancel
    assert again.of("ended") == [job["id"]]
    assert again.error() is None


def test_a_native_job_file_loads_with_its_notes_and_a_parametric_group(cops_home: Path) -> None:
    jdl = Path(__file__).parents[1] / "data" / "native" / "dirac-parametric-list.jdl"
    prepared = Client().load(jdl, image="docker://busybox:latest")
    assert [j["name"] for j in prepared.jobs] == ["Param_Test_0", "Param_Test_1", "Param_Test_2"]
    assert len({j["bulk_id"] for j in prepared.jobs}) == 1
    assert [note.split(": ")[1] for note in prepared.notes] == ["StdOutput", "StdError"]
    assert Client().jobs() == []  # loading stores nothing
