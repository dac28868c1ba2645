"""The study's docker set-up: a real private dockerd is started when none answers, and stopped after."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from computeops_grid.bench.docker_setup import answering_daemon, docker_for_study
from computeops_grid.bench.results import Study
from computeops_grid.bench.runtime_study import Options, run

pytestmark = [
    pytest.mark.service,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="dockerd needs root"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="dockerd (Debian docker.io) absent"),
]


def test_not_wanted_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with docker_for_study(False) as note:
        assert note == ""
        assert "DOCKER_HOST" not in os.environ


def test_private_dockerd_started_when_none_answers_and_stopped_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    if answering_daemon():
        pytest.skip("a dockerd already answers on the default socket: the study would use it")
    with docker_for_study(True) as note:
        assert "the study started a private one" in note
        root = Path(re.search(r"\((/tmp/cb-[^)]+)\)", note).group(1))  # type: ignore[union-attr]
        assert os.environ["DOCKER_HOST"] == f"unix://{root}/docker.sock"
        assert re.match(r"\d+\.\d+", answering_daemon())  # the client reaches it through DOCKER_HOST
        pid = int((root / "dockerd.pid").read_text())
        assert Path(f"/proc/{pid}").exists()
    assert "DOCKER_HOST" not in os.environ
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not root.exists()


def _pilot_has_docker() -> bool:
    from computeops_grid.bench.runtimes import load_pilot

    return "docker" in load_pilot().RUNTIMES


@pytest.mark.slow
@pytest.mark.skipif(not _pilot_has_docker(), reason="the pilot wrapper has no docker adapter")
def test_study_measures_docker_with_its_own_dockerd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    if answering_daemon():
        pytest.skip("a dockerd already answers on the default socket: the study would use it")
    out = Path(tempfile.mkdtemp(prefix="cops-bench-docker-", dir="/tmp"))
    out.chmod(0o755)  # the rootless check's user must reach the image
    try:
        written = run(Options(out, ["docker"], repeats=2, quick=True, workloads=["startup", "cpu-scalar"]))
        study = Study.load(written.json)
        assert [s.name for s in study.systems if s.available] == ["bare-metal", "docker"]
        docker = [m for m in study.measurements if m.system == "docker"]
        assert len(docker) == 4
        assert all(m.value is not None for m in docker), [m.error for m in docker]
        [note] = study.notes
        root = Path(re.search(r"\((/tmp/cb-[^)]+)\)", note).group(1))  # type: ignore[union-attr]
        assert not root.exists()  # stopped and removed after the study
        row = study.features[0]
        assert row["exit code"] == "42 passed"
        assert row["memory cap of the caller honoured"].startswith("no: ")  # dockerd's cgroup, not ours
        # the daemon's socket belongs to root: an ordinary account cannot use Docker (measured)
        assert row["works rootless (measured)"].startswith("no (as nobody, exit ")
        assert "permission denied" in row["works rootless (measured)"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
