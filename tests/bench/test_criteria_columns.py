"""The security/administration columns' own parsing, without a runtime (fast)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from computeops_grid.bench import criteria, features


def test_namespace_ids_from_ls_output() -> None:
    out = "lrwxrwxrwx 1 root root 0 pid -> pid:[4026531836]\nlrwx 1 net -> net:[4026531840]\n42\n"
    assert features._ns(out) == {"pid": "4026531836", "net": "4026531840"}


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_package_columns_read_dpkg(tmp_path: Path) -> None:
    """podman's closure on a minimal Debian holds conmon; lxc's brings the setuid lxc-user-nic."""
    podman, lxc = shutil.which("podman"), shutil.which("lxc-execute")
    if podman is None or lxc is None:
        pytest.skip("needs Debian's podman and lxc")
    adapter: Any = SimpleNamespace(name="podman", binary=podman)
    cell = criteria.packages_cell(adapter, tmp_path)
    assert cell.split()[1] == "packages," and "conmon" in cell and "MiB installed" in cell
    assert "podman" in criteria.closure(["podman"])
    assert "libc6" not in criteria.closure(["podman"])  # every Debian has it
    lxc_adapter: Any = SimpleNamespace(name="lxc", binary=lxc)
    assert "lxc-user-nic" in criteria.setuid_cell(lxc_adapter, tmp_path)
    assert criteria.conffiles_cell(adapter, tmp_path).split()[1:3] == ["in", "/etc,"]
    (tmp_path / "launcher").write_text("")
    adapter = SimpleNamespace(name="x", binary=str(tmp_path / "launcher"))
    assert criteria.packages_cell(adapter, tmp_path).startswith("not from a Debian package")


def test_a_debian_roots_launcher_is_asked_about_its_root(tmp_path: Path) -> None:
    """scripts/debian-roots.sh launchers run the program of their root: dpkg is asked there."""
    root = tmp_path / "sid"
    (root / "var/lib/dpkg").mkdir(parents=True)
    launcher = tmp_path / "apptainer"
    launcher.write_text(f'#!/usr/bin/python3\nimport os\nROOT = "{root}"\n')
    assert criteria.debian_root(str(launcher)) == str(root)
    launcher.write_text('#!/usr/bin/python3\nROOT = "/nonexistent"\n')
    assert criteria.debian_root(str(launcher)) == ""
    assert criteria.debian_root("/bin/true") == ""  # an ELF binary: the host's dpkg
