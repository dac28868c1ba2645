"""Formats are told by content: a file's extension only breaks ties."""

from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.jobs.formats.detect import detect
from tests.formats.conftest import CORPUS, ROOT

KIND = {".jdl": "jdl", ".xrsl": "xrsl", ".adl": "adl", ".sub": "sub"}


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_is_told_by_content_whatever_its_name(path: Path) -> None:
    assert detect(path.read_text(), Path("job.txt")) == KIND[path.suffix]
    assert detect(path.read_text(), Path("job.yaml")) == KIND[path.suffix]


@pytest.mark.parametrize("path", sorted((ROOT / "etc" / "examples").glob("*.yaml")))
def test_yaml_stays_yaml(path: Path) -> None:
    assert detect(path.read_text(), Path("job.jdl")) == "yaml"


@pytest.mark.parametrize(
    ("text", "name", "kind"),
    [
        ("", "job.sub", "sub"),
        ("", "job.yaml", "yaml"),
        ("", "job", "yaml"),
        ("# a comment only\n", "job.xrsl", "xrsl"),
        ('Executable = "/bin/ls";\n', "job", "jdl"),
        ("executable = /bin/ls\nqueue\n", "job", "sub"),
        ("<?xml version='1.0'?>\n<ActivityDescriptions/>", "job", "adl"),
        ("<html/>", "job.adl", "adl"),
    ],
)
def test_ties_and_fragments(text: str, name: str, kind: str) -> None:
    assert detect(text, Path(name)) == kind
