"""The corpus of native descriptions (tests/data/native): every file converts to the expected YAML
(its header lists what was not carried, with lines), submits with --dry-run to its own backend
type and to one other, and names each note's attribute on the line it gives.

Set COPS_UPDATE_GOLDEN=1 to rewrite tests/data/native/expected/ after a deliberate change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from computeops_grid.cli.convert import Target, render
from computeops_grid.jobs.formats.common import ReadOptions
from computeops_grid.jobs.loader import load_file
from computeops_grid.logic import submit
from computeops_grid.logic.session import Session
from tests.formats.conftest import CORPUS, IMAGE, NATIVE

OWN = {".jdl": "diracx", ".xrsl": "arc", ".adl": "arc", ".sub": "htcondor-ce"}
OTHER = {".jdl": "arc", ".xrsl": "slurm", ".adl": "htcondor-ce", ".sub": "arc"}
IDS = [p.name for p in CORPUS]


def test_corpus_has_every_format() -> None:
    counts = {suffix: sum(p.suffix == suffix for p in CORPUS) for suffix in OWN}
    assert counts == {".jdl": 7, ".xrsl": 6, ".adl": 3, ".sub": 7}


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_converts_to_the_expected_yaml(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(NATIVE)
    text, _ = render(Path(path.name), Target.yaml, image=IMAGE)
    golden = NATIVE / "expected" / f"{path.name}.yaml"
    if os.environ.get("COPS_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_each_note_names_an_attribute_on_its_line(path: Path) -> None:
    lines = path.read_text().splitlines()
    notes = load_file(path, ReadOptions(image=IMAGE)).notes
    for note in notes:
        if note.line is None:
            continue
        name = note.attribute.lstrip("+").split("/")[-1]
        assert re.search(re.escape(name), lines[note.line - 1], re.IGNORECASE), (note, lines[note.line - 1])


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
@pytest.mark.parametrize("where", ["own", "other"])
def test_dry_run_to_its_own_backend_and_another(path: Path, where: str, session: Session) -> None:
    backend = (OWN if where == "own" else OTHER)[path.suffix]
    notes: list[str] = []
    records = submit.records_from_files([path], session, backend, image=IMAGE, notes=notes)
    text = submit.describe(session, records)
    assert text.strip()
    assert all(r.backend == backend for r in records)
    assert all(n.startswith(f"{path}:") for n in notes)
    for rec in records:  # every job reaches the backend through the wrapper, in its image
        assert rec.spec.image in text or rec.spec.image.replace("docker://", "") in text or "b64:" in text


def test_site_options_reach_their_own_backend_only(session: Session) -> None:
    jdl = NATIVE / "dirac-api-job.jdl"
    notes: list[str] = []
    records = submit.records_from_files([jdl], session, "diracx", image=IMAGE, notes=notes)
    text = submit.describe(session, records)
    assert 'Site = {"LCG.CERN.cern", "LCG.CNAF.it"};' in text
    assert 'BannedSites = {"LCG.GRIDKA.de"};' in text
    assert not any("Site: ignored" in n for n in notes)
    notes.clear()
    submit.records_from_files([jdl], session, "slurm", image=IMAGE, notes=notes)
    ignored = "Site: ignored: site-specific, understood by dirac/diracx backends only (not slurm)"
    assert f"{jdl}:14: {ignored}" in notes

    xrsl = NATIVE / "arc-staging.xrsl"
    text = submit.describe(session, submit.records_from_files([xrsl], session, "arc", image=IMAGE))
    assert "<QueueName>atlas</QueueName>" in text
    assert "<Name>APPS/HEP/ATLAS-SITE</Name>" in text
    notes.clear()
    records = submit.records_from_files([xrsl], session, "slurm", image=IMAGE, notes=notes)
    assert records[0].spec.backend_options == {}
    assert any(n.startswith(f"{xrsl}:21: queue: ignored") for n in notes)


def test_a_parametric_jdl_is_one_bulk(session: Session) -> None:
    path = NATIVE / "dirac-parametric-sequences.jdl"
    records = submit.records_from_files([path], session, "slurm", image=IMAGE)
    assert [r.spec.name for r in records] == [f"sweep_{n:02d}" for n in range(12)]
    assert len({r.bulk_id for r in records}) == 1
    assert records[11].spec.arguments == ["--seed", "210", "--config", "c.cfg", "--out", "out_11.root"]
    assert records[11].spec.inputs == ["files/simulate.sh", "files/c.cfg"]


def test_htcondor_items_keep_every_character(session: Session) -> None:
    """htcondor2 24.0's Submit.itemdata() cuts items to one character: the reader must not."""
    records = submit.records_from_files([NATIVE / "condor-queue-from.sub"], session, "slurm")
    assert [r.spec.arguments for r in records] == [
        ["a.cfg", "1", "out 0.txt"], ["b.cfg", "2", "out 1.txt"], ["c.cfg", "3", "out 2.txt"],
    ]  # fmt: skip
    assert records[2].spec.inputs == ["files/c.cfg", "files/reference.dat", "files/compare.sh"]
