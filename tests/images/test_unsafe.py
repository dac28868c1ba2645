"""Malicious layers built with tarfile: each trick refused per file; nothing outside the repo changes."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from computeops_grid.images.errors import UnsafeArchive
from computeops_grid.images.publish import Publisher
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.sources import load_source
from computeops_grid.images.unpack import Limits, Policy

from .helpers import Member, member, oci_layout

ESCAPE = "../../../../../../../../../../..{outside}"  # climbs out of any root, lands in outside/
TRICKS: dict[str, list[list[Member]]] = {  # layers put on top of a first layer holding ok.txt
    "dotdot": [[member("../../escape.txt", data=b"x")]],
    "absolute": [[member("/tmp/abs-escape.txt", data=b"x")]],
    "symlink-then-write": [[member("evil", tarfile.SYMTYPE, link=ESCAPE), member("evil/pwned", data=b"x")]],
    "symlink-then-write-lower-layer": [
        [member("evil", tarfile.SYMTYPE, link=ESCAPE)],
        [member("evil/pwned", data=b"x")],
    ],
    "symlink-chain-escape": [
        [member("a", tarfile.SYMTYPE, link="b/c"), member("b", tarfile.SYMTYPE, link="d/../..")],
        [member("d/", tarfile.DIRTYPE), member("a/pwned", data=b"x")],
    ],
    "symlink-loop": [
        [member("a", tarfile.SYMTYPE, link="b"), member("b", tarfile.SYMTYPE, link="a/")],
        [member("a/pwned", data=b"x")],
    ],
    "whiteout-through-escape": [
        [member("evil", tarfile.SYMTYPE, link=ESCAPE)],
        [member("evil/.wh.sentinel", data=b"")],
    ],
    "hardlink-out": [[member("hl", tarfile.LNKTYPE, link="../../../etc/passwd")]],
    "hardlink-missing": [[member("hl", tarfile.LNKTYPE, link="etc/shadow")]],
    "hardlink-through-symlink-out": [
        [member("evil", tarfile.SYMTYPE, link=ESCAPE)],
        [member("hl", tarfile.LNKTYPE, link="evil/sentinel")],
    ],
    "hardlink-to-symlink": [
        [member("s", tarfile.SYMTYPE, link="ok.txt")],
        [member("hl", tarfile.LNKTYPE, link="s")],
    ],
    "hardlink-to-directory": [[member("d/", tarfile.DIRTYPE)], [member("hl", tarfile.LNKTYPE, link="d")]],
    "device": [[member("dev/sda", tarfile.BLKTYPE), member("dev/null2", tarfile.CHRTYPE)]],
    "fifo": [[member("fifo", tarfile.FIFOTYPE)]],
}


def _image(tmp_path: Path, layers: list[list[Member]]) -> object:
    return load_source(f"oci:{oci_layout(tmp_path / 'oci', layers)}")[0]


def _snapshot(path: Path) -> list[str]:
    return sorted(str(p) for p in path.rglob("*"))


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_trick_is_refused_and_nothing_outside_is_touched(tmp_path: Path, trick: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("untouched")
    layers = [[member("ok.txt", data=b"fine")]]
    layers += [[(m[0], m[1], m[2], m[3], m[4].format(outside=outside)) for m in lay] for lay in TRICKS[trick]]
    repo = tmp_path / "repo"
    image = _image(tmp_path, layers)
    before = _snapshot(outside)
    links = os.stat(outside / "sentinel").st_nlink
    with pytest.raises(UnsafeArchive) as err:
        Publisher(repo).publish(image, parse_ref("docker://evil/img:1"))  # type: ignore[arg-type]
    assert err.value.refusals, "each refusal is reported per file"
    assert _snapshot(outside) == before
    assert (outside / "sentinel").read_text() == "untouched"
    assert os.stat(outside / "sentinel").st_nlink == links, "no hard link was made to a file outside"
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/abs-escape.txt").exists()
    assert not (repo / "registry.hub.docker.com" / "evil").exists(), "a refused image is not published"


def test_skip_policy_publishes_the_rest_and_reports(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layers = [
        [
            member("ok.txt", data=b"fine"),
            member("../bad", data=b"x"),
            member("dev/sda", tarfile.BLKTYPE),
            member("suid", data=b"x", mode=0o4755),
            member("evil", tarfile.SYMTYPE, link=ESCAPE.format(outside=outside)),
            member("evil/pwned", data=b"x"),
        ]
    ]
    result = Publisher(tmp_path / "repo", policy=Policy.SKIP).publish(
        _image(tmp_path, layers),  # type: ignore[arg-type]
        parse_ref("docker://evil/img:1"),
    )
    flat = tmp_path / "repo" / "registry.hub.docker.com" / "evil" / "img:1"
    assert (flat / "ok.txt").read_bytes() == b"fine"
    assert os.stat(flat / "suid").st_mode & 0o7777 == 0o755, "setuid bit stripped"
    assert os.readlink(flat / "evil") == ESCAPE.format(outside=outside), "symlinks are kept as links"
    assert not (outside / "pwned").exists()
    reasons = {r.path: (r.reason, r.neutralised) for r in result.refusals}
    assert reasons["suid"][1] is True
    assert {"../bad", "dev/sda", "evil/pwned"} <= set(reasons)


@pytest.mark.parametrize(
    ("limits", "what"), [(Limits(max_entries=50), "entries"), (Limits(max_bytes=10_000), "bytes")]
)
def test_tar_bomb_is_stopped_by_limits(tmp_path: Path, limits: Limits, what: str) -> None:
    bomb = [member(f"f{i}", data=b"0" * 1000) for i in range(100)]
    with pytest.raises(UnsafeArchive, match=what):
        Publisher(tmp_path / "repo", limits=limits, policy=Policy.SKIP).publish(
            _image(tmp_path, [bomb]),  # type: ignore[arg-type]
            parse_ref("docker://evil/bomb:1"),
        )


def test_whiteout_and_opaque_from_handmade_layers(tmp_path: Path) -> None:
    layers = [
        [
            member("d/", tarfile.DIRTYPE, mode=0o700),
            member("d/x", data=b"x"),
            member("d/y", data=b"y"),
            member("e/z", data=b"z"),
            member("secret", data=b"s", mode=0o600),
        ],
        [
            member("d/.wh..wh..opq", data=b""),
            member("d/new", data=b"n"),
            member("e/.wh.z", data=b""),
            member("e/.wh.../../outside", data=b""),
        ],
    ]
    with pytest.raises(UnsafeArchive, match="unsafe"):
        Publisher(tmp_path / "repo").publish(_image(tmp_path, layers), parse_ref("docker://t/w:1"))  # type: ignore[arg-type]
    result = Publisher(tmp_path / "repo2", policy=Policy.SKIP).publish(
        _image(tmp_path / "again", layers),  # type: ignore[arg-type]
        parse_ref("docker://t/w:1"),
    )
    flat = tmp_path / "repo2" / "registry.hub.docker.com" / "t" / "w:1"
    assert sorted(os.listdir(flat / "d")) == ["new"]
    assert os.listdir(flat / "e") == []
    assert os.stat(flat / "secret").st_mode & 0o444 == 0o444, "readable for all"
    assert os.stat(flat / "d").st_mode & 0o755 == 0o755
    assert any(r.path.endswith("outside") for r in result.refusals)
