"""Bad native descriptions (tests/data/native/bad): each is refused with the file, the line and the
attribute in its own words, and exit status 3 from the command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from computeops_grid.errors import ExitCode, JobFileError
from computeops_grid.jobs.formats.common import ReadOptions
from computeops_grid.jobs.loader import load_jobs
from tests.formats.conftest import NATIVE

BAD = sorted((NATIVE / "bad").glob("bad-*"))
EXPECT = re.compile(r"expect: line (\w+), attribute ([\w./+]*): (.+?)\s*(\*\)|-->)?$")


def test_every_format_has_bad_files() -> None:
    assert {p.suffix for p in BAD} == {".jdl", ".xrsl", ".adl", ".sub"}
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_native_file_names_line_attribute_and_reason(path: Path) -> None:
    match = EXPECT.search(path.read_text().splitlines()[0])
    assert match, f"{path.name} lacks its 'expect:' line"
    line, attribute, reason = match.group(1), match.group(2), match.group(3)
    image = None if "no-image" in path.name else "docker://busybox:latest"
    with pytest.raises(JobFileError) as info:
        load_jobs([path], ReadOptions(image=image))
    err = info.value
    assert err.path == str(path)
    assert str(err.line).lower() == line
    assert err.field == attribute
    assert reason in err.reason
    assert err.exit_code == ExitCode.INVALID_INPUT
