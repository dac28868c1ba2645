"""The job store on a real SQLite file: transitions, history, schema, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from computeops_grid.errors import IllegalTransition, JobNotFound, StoreError
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.schema import SCHEMA_VERSION
from computeops_grid.jobs.state import ALLOWED, FINAL, JobState, is_allowed
from computeops_grid.jobs.store import JobStore

SPEC = JobSpec(name="t", image="docker://busybox:latest", command="true")


def records(n: int, prefix: str = "j") -> list[JobRecord]:
    return [JobRecord(id=f"{prefix}{i:05d}", spec=SPEC, backend="local") for i in range(n)]


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite")


def test_add_and_read_back(store: JobStore) -> None:
    store.add(records(3))
    rec = store.get("j00001")
    assert rec.state == JobState.NEW
    assert rec.spec == SPEC
    assert rec.created > 0
    assert [s.id for s in store.summaries()] == ["j00000", "j00001", "j00002"]
    assert [h.to_state for h in store.history("j00001")] == [JobState.NEW]


def test_legal_path_is_recorded_in_history(store: JobStore) -> None:
    store.add(records(1))
    assert [r.id for r in store.claim(["j00000"])] == ["j00000"]
    store.transition("j00000", JobState.QUEUED, native_id="123")
    store.transition("j00000", JobState.RUNNING)
    store.transition("j00000", JobState.COMPLETED, exit_code=0)
    rec = store.get("j00000")
    assert (rec.state, rec.native_id, rec.exit_code) == (JobState.COMPLETED, "123", 0)
    states = [h.to_state for h in store.history("j00000")]
    assert states == [
        JobState.NEW,
        JobState.SUBMITTING,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.COMPLETED,
    ]
    times = [h.at for h in store.history("j00000")]
    assert times == sorted(times)


@pytest.mark.parametrize("old", list(JobState))
@pytest.mark.parametrize("new", list(JobState))
def test_transition_table_is_enforced(tmp_path: Path, old: JobState, new: JobState) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    store.add(records(1))
    path = {
        JobState.NEW: [], JobState.SUBMITTING: [JobState.SUBMITTING],
        JobState.QUEUED: [JobState.SUBMITTING, JobState.QUEUED],
        JobState.RUNNING: [JobState.SUBMITTING, JobState.RUNNING],
        JobState.COMPLETED: [JobState.SUBMITTING, JobState.COMPLETED],
        JobState.FAILED: [JobState.FAILED], JobState.CANCELLED: [JobState.CANCELLED],
    }[old]  # fmt: skip
    for step in path:
        store.transition("j00000", step)
    assert store.get("j00000").state == old
    if is_allowed(old, new):
        store.transition("j00000", new)
        assert store.get("j00000").state == new
    else:
        with pytest.raises(IllegalTransition, match=f"{old} -> {new}"):
            store.transition("j00000", new)
        assert store.get("j00000").state == old  # the refused change left nothing behind
        assert len(store.history("j00000")) == len(path) + 1


def test_final_states_are_final() -> None:
    assert all(not ALLOWED[s] for s in FINAL)


def test_non_strict_batch_skips_regressions(store: JobStore) -> None:
    store.add(records(2))
    store.claim(["j00000", "j00001"])
    store.transitions(
        [("j00000", JobState.COMPLETED, "", 0, "n0", None), ("j00001", JobState.QUEUED, "", None, "n1", None)]
    )
    changed = store.transitions(
        [
            ("j00000", JobState.RUNNING, "", None, None, None),
            ("j00001", JobState.RUNNING, "", None, None, None),
        ]
    )
    assert changed == 1
    assert store.get("j00000").state == JobState.COMPLETED
    assert store.get("j00001").state == JobState.RUNNING


def test_unknown_job_and_prefixes(store: JobStore) -> None:
    store.add(records(12))
    assert store.resolve(["j00011"]) == ["j00011"]
    with pytest.raises(JobNotFound, match="ambiguous"):
        store.resolve(["j0001"])
    with pytest.raises(JobNotFound, match="no job zz"):
        store.resolve(["zz"])
    with pytest.raises(JobNotFound):
        store.get("nope")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    JobStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this cops-grid"):
        JobStore(path)


def test_migrates_an_empty_file_and_uses_wal(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    assert store.schema_version == SCHEMA_VERSION
    assert sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_garbage_file_gives_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the job store"):
        JobStore(path)


def _writer(path: str, worker: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = JobStore(Path(path))
    store.add(records(50, prefix=f"w{worker}-"))
    claimed = store.claim([f"shared{i:03d}" for i in range(200)], owner=f"worker-{worker}")
    for rec in claimed:
        store.transition(rec.id, JobState.QUEUED, native_id=f"{worker}")
    queue.put([r.id for r in claimed])


def test_concurrent_processes_never_claim_the_same_job(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = JobStore(path)
    store.add([JobRecord(id=f"shared{i:03d}", spec=SPEC, backend="local") for i in range(200)])
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), w, queue)) for w in range(4)]
    for proc in procs:
        proc.start()
    claims = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    all_claimed = [job for claim in claims for job in claim]
    assert sorted(all_claimed) == [f"shared{i:03d}" for i in range(200)]  # each exactly once
    assert len(store.summaries()) == 200 + 4 * 50
    for job_id in all_claimed:
        hist = [h.to_state for h in store.history(job_id)]
        assert hist == [JobState.NEW, JobState.SUBMITTING, JobState.QUEUED]
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
