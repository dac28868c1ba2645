"""Concurrent publishers (real processes) and a publisher killed with SIGKILL leave a valid repository."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from computeops_grid.images.repository import gc, list_images
from computeops_grid.images.verify import verify

from .helpers import member, oci_layout

pytestmark = pytest.mark.slow

PUBLISH = """
import sys
from computeops_grid.images.publish import Publisher
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.sources import load_source
Publisher(sys.argv[1]).publish(load_source("oci:" + sys.argv[2])[0], parse_ref(sys.argv[3]))
"""


def _big_layout(path: Path, tag: str, files: int = 1500) -> Path:
    layers = [
        [member(f"{tag}/{n}/f{i}", data=f"{tag}{n}{i}".encode() * 50) for i in range(files // 3)]
        for n in range(3)
    ]
    return oci_layout(path, layers)


def _start(repo: Path, layout: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PUBLISH, str(repo), str(layout), name])


def test_concurrent_publishers(tmp_path: Path) -> None:
    one, two = _big_layout(tmp_path / "one", "one"), _big_layout(tmp_path / "two", "two")
    repo = tmp_path / "repo"
    procs = [
        _start(repo, one, "docker://t/a:1"),
        _start(repo, one, "docker://t/b:1"),
        _start(repo, two, "docker://t/a:1"),
        _start(repo, two, "docker://t/c:1"),
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert verify(repo).ok, verify(repo).problems
    assert sorted(i.path for i in list_images(repo)) == [f"registry.hub.docker.com/t/{n}:1" for n in "abc"]
    assert len(list((repo / ".flat").glob("??/*"))) == 2, "one flat per image, shared between names"
    assert not list((repo / ".cops" / "tmp").iterdir())


def test_kill_9_during_publish_keeps_previous_state(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = oci_layout(tmp_path / "first", [[member("v", data=b"one")]])
    assert _start(repo, first, "docker://t/a:1").wait(timeout=60) == 0
    second = _big_layout(tmp_path / "second", "two", files=3000)
    proc = _start(repo, second, "docker://t/a:1")
    deadline = time.monotonic() + 30
    while not list((repo / ".cops" / "tmp").glob("publish-*/layers/*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    report = verify(repo)
    assert report.ok, report.problems
    assert (repo / "registry.hub.docker.com" / "t" / "a:1" / "v").read_bytes() == b"one"
    assert list((repo / ".cops" / "tmp").iterdir()), "the killed publish left staging garbage"
    gc(repo)
    assert not list((repo / ".cops" / "tmp").iterdir())
    assert verify(repo).ok
    assert _start(repo, second, "docker://t/a:1").wait(timeout=120) == 0
    assert verify(repo).ok
    assert not (repo / "registry.hub.docker.com" / "t" / "a:1" / "v").exists()
