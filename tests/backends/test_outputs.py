"""The one output collection and its one link rule, on real files and links."""

from __future__ import annotations

import os
from pathlib import Path

from computeops_grid.backends.common.outputs import collect_outputs


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "result.txt").write_text("result")
    (work / "sub" / "hist.root").write_text("hist")
    os.symlink("result.txt", work / "inside-link.txt")  # inside: followed
    os.symlink("sub", work / "linked-dir")  # inside: followed
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    os.symlink(secret, work / "outside-link.txt")  # leaves the job dir: refused
    os.symlink("../secret.txt", work / "sub" / "escape.root")  # relative escape: refused
    os.symlink("missing", work / "dangling.txt")  # nothing to copy
    return work


def test_links_inside_are_followed_links_leaving_are_refused(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    dest = tmp_path / "out"
    copied = collect_outputs(work, ["*.txt", "linked-dir/*.root", "sub/*.root"], dest)
    names = sorted(str(p.relative_to(dest)) for p in copied)
    assert names == ["inside-link.txt", "linked-dir/hist.root", "result.txt", "sub/hist.root"]
    assert (dest / "inside-link.txt").read_text() == "result"
    assert not (dest / "inside-link.txt").is_symlink()  # a copy, never a link
    assert not (dest / "outside-link.txt").exists()
    assert not (dest / "sub" / "escape.root").exists()
    assert "not yours" not in "".join(p.read_text() for p in copied)


def test_dotdot_patterns_cannot_leave_the_job_directory(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    copied = collect_outputs(work, ["../*.txt", "sub/../../secret.txt"], tmp_path / "out")
    assert copied == []


def test_every_backend_uses_the_one_collection() -> None:
    root = Path(__file__).resolve().parents[2] / "computeops_grid" / "backends"
    definitions = [p for p in root.rglob("*.py") if "def collect_outputs" in p.read_text()]
    assert [p.relative_to(root).as_posix() for p in definitions] == ["common/outputs.py"]
