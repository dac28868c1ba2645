"""The study's docker set-up: a real private dockerd is started when none answers, and stopped after."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from computeops_grid.bench.docker_setup import answering_daemon, docker_for_study

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
