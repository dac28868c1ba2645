"""Layers that write through symlinked directories (merged /usr) and hard-link lower layers' files.

The layers are built here with Python's tarfile, as real tools write them: ``bin -> usr/bin``
from a distribution base layer, then a later layer adding ``bin/x`` (no ``bin/`` entry), an
absolute ``lib -> /usr/lib``, and a hard link to a file of a lower layer. Hostile variants
(a symlink whose resolution leaves the root) are in test_unsafe.py.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from computeops_grid.images.publish import Publisher
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.sources import load_source
from computeops_grid.images.verify import verify

from .helpers import Member, member, oci_layout

BASE: list[Member] = [
    member("usr/", tarfile.DIRTYPE, mode=0o755),
    member("usr/bin/", tarfile.DIRTYPE, mode=0o755),
    member("usr/lib/", tarfile.DIRTYPE, mode=0o755),
    member("usr/bin/python3.11", data=b"#!python\n", mode=0o755),
    member("bin", tarfile.SYMTYPE, link="usr/bin"),
    member("lib", tarfile.SYMTYPE, link="/usr/lib"),
    member("run/", tarfile.DIRTYPE, mode=0o755),
    member("var/", tarfile.DIRTYPE, mode=0o755),
    member("var/run", tarfile.SYMTYPE, link="../run"),
]


def _publish(tmp_path: Path, layers: list[list[Member]]) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    image = load_source(f"oci:{oci_layout(tmp_path / 'oci', layers)}")[0]
    Publisher(repo).publish(image, parse_ref("docker://t/merged-usr:1"))
    return repo, repo / "registry.hub.docker.com" / "t" / "merged-usr:1"


def test_writes_through_lower_layer_symlinks_land_inside_the_image(tmp_path: Path) -> None:
    upper = [
        member("bin/x", data=b"x\n", mode=0o755),  # bin -> usr/bin (relative)
        member("lib/libx.so", data=b"lib\n"),  # lib -> /usr/lib (absolute: the image's /usr/lib)
        member("var/run/pid", data=b"1\n"),  # var/run -> ../run
        member("bin/.wh.python3.11", data=b""),  # a whiteout through the symlink
    ]
    repo, flat = _publish(tmp_path, [BASE, upper])
    assert os.readlink(flat / "bin") == "usr/bin", "the symlink stays a symlink"
    assert (flat / "usr" / "bin" / "x").read_bytes() == b"x\n"
    assert (flat / "usr" / "lib" / "libx.so").read_bytes() == b"lib\n"
    assert (flat / "run" / "pid").read_bytes() == b"1\n"
    assert not (flat / "usr" / "bin" / "python3.11").exists(), "whiteout applied at the resolved path"
    assert os.readlink(flat / "lib") == "/usr/lib"
    assert not Path("/usr/lib/libx.so").exists()
    assert verify(repo).ok, verify(repo).problems


def test_symlink_and_write_in_the_same_layer(tmp_path: Path) -> None:
    layer = [member("sbin", tarfile.SYMTYPE, link="usr/sbin"), member("sbin/tool", data=b"t")]
    repo, flat = _publish(tmp_path, [layer])
    assert os.readlink(flat / "sbin") == "usr/sbin"
    assert (flat / "usr" / "sbin" / "tool").read_bytes() == b"t"
    layerfs = next((repo / ".layers").glob("??/*/layerfs"))
    assert (layerfs / "usr" / "sbin" / "tool").is_file(), "the layer copy holds the resolved path too"
    assert verify(repo).ok, verify(repo).problems


def test_directory_entry_replaces_a_symlink_as_the_spec_says(tmp_path: Path) -> None:
    # OCI layer spec, "Changeset over existing files": only dir-over-dir merges; else remove, recreate
    repo, flat = _publish(tmp_path, [BASE, [member("bin/", tarfile.DIRTYPE), member("bin/y", data=b"y")]])
    assert not (flat / "bin").is_symlink()
    assert (flat / "bin").is_dir()
    assert os.listdir(flat / "bin") == ["y"]
    assert (flat / "usr" / "bin" / "python3.11").is_file()
    assert verify(repo).ok, verify(repo).problems


def test_hard_links_to_lower_layer_files(tmp_path: Path) -> None:
    upper = [
        member("usr/bin/python3", tarfile.LNKTYPE, link="usr/bin/python3.11"),
        member("bin/python", tarfile.LNKTYPE, link="bin/python3.11"),  # through bin -> usr/bin
    ]
    repo, flat = _publish(tmp_path, [BASE, upper])
    base = os.stat(flat / "usr" / "bin" / "python3.11")
    for name in ("python3", "python"):
        linked = os.stat(flat / "usr" / "bin" / name)
        assert (linked.st_ino, linked.st_dev) == (base.st_ino, base.st_dev)
    assert (flat / "usr" / "bin" / "python").read_bytes() == b"#!python\n"
    assert verify(repo).ok, verify(repo).problems
    # the shared layer holds no copy: the link is made in each flat, against that flat's lower layers
    upper_layerfs = [p for p in (repo / ".layers").glob("??/*/layerfs") if (p / "usr").exists()]
    assert all(not (p / "usr" / "bin" / "python3").exists() for p in upper_layerfs)
