"""An existing store is upgraded in place: tests/data/store/jobs-schema1.sqlite was written by
the schema-1 code (before provenance) with one completed job; opening it migrates it to the
current schema, keeps the job and its history, and lets it carry provenance."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from computeops_grid.jobs.schema import SCHEMA_VERSION
from computeops_grid.jobs.state import JobState
from computeops_grid.jobs.store import JobStore
from tests.conftest import ROOT

OLD_STORE = ROOT / "tests" / "data" / "store" / "jobs-schema1.sqlite"
JOB = "0123456789abcdef0123456789abcdef"


def test_a_schema_1_store_is_upgraded_in_place_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    shutil.copyfile(OLD_STORE, path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "image_digest" not in [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    with JobStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 2
        rec = store.get(JOB)
        assert (rec.state, rec.exit_code, rec.native_id, rec.name) == (JobState.COMPLETED, 0, "123", "old")
        assert [t.to_state for t in store.history(JOB)][-1] == JobState.COMPLETED
        assert (rec.image_digest, rec.runtime, rec.node) == (None, None, None)
        assert store.provenance(JOB) is None
        digest = "sha256:" + "ab" * 32
        report: dict[str, object] = {"image_digest": digest, "runtime": "bubblewrap", "future": {"kept": [1]}}
        store.set_provenance(JOB, report, digest=digest, runtime="bubblewrap", node="wn01")
    with JobStore(path) as store:  # reopened: nothing to migrate, everything kept
        assert store.provenance(JOB) == report  # a section this version does not know is kept
        (row,) = store.summaries(image_digest="sha256:abab")
        assert (row.id, row.image_digest, row.runtime, row.node) == (JOB, digest, "bubblewrap", "wn01")
        assert store.summaries(image_digest="sha256:cd") == []
        assert store.get(JOB).node == "wn01"
        store.delete([JOB])
        assert store.provenance(JOB) is None
