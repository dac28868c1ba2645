"""First run after `pip install`: an empty data directory, and the README's first job works.

The local backend builds the embedded image (docker://busybox:latest, from Debian's
busybox-static) before the first job that names it; nobody runs a set-up command by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.errors import ExitCode, ToolMissing
from computeops_grid.images import default
from tests.conftest import EXAMPLES, Cli


@pytest.mark.parametrize(
    ("image", "embedded"),
    [
        ("docker://busybox:latest", True),
        ("docker://busybox", True),
        ("docker://docker.io/library/busybox:latest", True),
        ("docker://registry.hub.docker.com/library/busybox", True),
        ("docker://busybox:1.36", False),
        ("docker://alpine:latest", False),
        ("docker://bad name", False),
        ("/srv/rootfs", False),
        ("busybox.sif", False),
    ],
)
def test_names_of_the_embedded_image(image: str, *, embedded: bool) -> None:
    assert default.names_embedded(image) is embedded


def test_the_first_job_builds_the_embedded_image(tmp_path: Path) -> None:
    home = tmp_path / "fresh"  # no config, no image repository: as after `pip install`
    cli = Cli(home)
    first = cli("submit", str(EXAMPLES / "hello.yaml"), "--wait", cwd=tmp_path)
    assert first.code == 0, first.stderr
    assert "Hello from Linux in a container" in first.stdout
    image = home / "images" / default.PUBLIC
    assert (image / "bin" / "sh").exists()
    built = image.resolve().stat().st_mtime_ns
    again = cli("submit", str(EXAMPLES / "hello.yaml"), "--wait", cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert image.resolve().stat().st_mtime_ns == built  # built once


def test_an_unusable_image_root_is_one_line_with_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "file").write_text("")
    (home / "config.yaml").write_text(f"image_root: {tmp_path / 'file' / 'images'}\n")
    result = Cli(home)("submit", str(EXAMPLES / "hello.yaml"))
    assert result.code == ExitCode.INVALID_INPUT
    assert "Error: cannot build the embedded image docker://busybox:latest in" in result.stderr
    assert "Hint: set image_root in the configuration" in result.stderr
    assert Cli(home)("list", "--json").json() == []  # refused before anything was stored


def test_without_busybox_static_the_hint_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing) as info:
        default.ensure_default_image(tmp_path, busybox=tmp_path / "no-busybox")
    assert info.value.hint == "apt-get install busybox-static"
    assert info.value.exit_code == ExitCode.TOOL_MISSING
