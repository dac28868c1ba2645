"""The interoperability experiment end to end with one runtime (bubblewrap): buildah build,
``cops-grid image publish``, ``cops-grid image convert`` there and back, the round-tripped image
built and published too, both run through the wrapper's adapter, outputs compared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from computeops_grid.bench import interop

pytestmark = pytest.mark.skipif(
    shutil.which("buildah") is None or shutil.which("bwrap") is None, reason="needs buildah and bubblewrap"
)


def test_one_dockerfile_round_trips_and_runs_the_same(tmp_path: Path) -> None:
    data = interop.run_experiment(tmp_path, ["bubblewrap"])
    failed = [s for s in data["steps"] if s["rc"]]
    assert not failed, failed
    assert data["fixed_point"]
    assert data["definition"].startswith("Bootstrap: scratch\n")
    assert "export INTEROP_GREETING=hello-from-docker" in data["definition"]
    runs = {(r["runtime"], r["image"]): r for r in data["runs"]}
    assert set(runs) == {("bubblewrap", "docker"), ("bubblewrap", "roundtrip")}
    docker, back = runs["bubblewrap", "docker"], runs["bubblewrap", "roundtrip"]
    assert docker["ok"] and back["ok"]
    assert docker["checksum"] == back["checksum"]  # the round-tripped image prints the same
    assert "kernel ok scalar checksum=14884097605143612481" in docker["output"]
    assert "greeting unset" in docker["output"]  # the wrapper's adapters give the payload a clean env
    ease = interop.ease_columns(data)["bubblewrap"]
    assert ease["from a Docker image to a running payload (measured)"].startswith(
        "2: cops-grid image publish"
    )
    assert not list(tmp_path.iterdir())  # the work directory is gone


def test_compare_lists_the_lines_that_differ() -> None:
    ref = interop.Run("docker", "docker", "native", ["a", "b"], True, output="x\ngreeting hi\n")
    other = interop.Run("lxc", "docker", "wrapper adapter", ["a"], True, output="x\ngreeting unset\n")
    broken = interop.Run("podman", "docker", "native", ["a"], False, error="exit 126")
    assert interop.compare([other, ref, broken]) == "docker (native, docker)"
    assert ref.differs == [] and other.differs == ["- greeting hi", "+ greeting unset"]
