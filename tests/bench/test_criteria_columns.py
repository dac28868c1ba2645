"""The security/administration columns' own parsing, without a runtime (fast)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from computeops_grid.bench import features


def test_namespace_ids_from_ls_output() -> None:
    out = "lrwxrwxrwx 1 root root 0 pid -> pid:[4026531836]\nlrwx 1 net -> net:[4026531840]\n42\n"
    assert features._ns(out) == {"pid": "4026531836", "net": "4026531840"}


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_package_column_reads_dpkg(tmp_path: Path) -> None:
    adapter: Any = SimpleNamespace(binary=shutil.which("dpkg"))
    cell = features.package(adapter, tmp_path)
    assert cell.startswith("dpkg ") and "MiB" in cell and "config files in /etc" in cell
    adapter = SimpleNamespace(binary=str(tmp_path / "launcher"))
    (tmp_path / "launcher").write_text("")
    assert features.package(adapter, tmp_path).startswith("not from a Debian package")
