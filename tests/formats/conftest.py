"""Shared by the native-format tests: the corpus and an in-process session for --dry-run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.config import Config
from computeops_grid.logic.session import Session

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "tests" / "data" / "native"
CORPUS = sorted(p for p in NATIVE.iterdir() if p.suffix in (".jdl", ".xrsl", ".adl", ".sub"))
IMAGE = "docker://busybox:latest"


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """A session whose ARC and HTCondor-CE backends have a CE set (``--dry-run`` contacts none)."""
    monkeypatch.setenv("COPS_GRID_HOME", str(tmp_path))
    config = Config.model_validate(
        {"backends": {"arc": {"ce": "arc.example.org"}, "htcondor-ce": {"ce": "ce.example.org"}}}
    )
    with Session.open(config) as opened:
        yield opened
