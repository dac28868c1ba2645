"""The job store: SQLite in WAL mode, the only writer of job states.

* One row per job, one ``history`` row per state transition (with timestamps).
* Every state change goes through :meth:`JobStore.transition` / :meth:`apply_status`,
  which refuse moves outside :data:`computeops_grid.jobs.state.ALLOWED` inside the
  same transaction that writes them.
* Writers take ``BEGIN IMMEDIATE``, so two ``cops-grid`` processes serialise cleanly;
  :meth:`claim` moves jobs ``new -> submitting`` atomically, so only one process ever
  submits a given job.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from computeops_grid.errors import IllegalTransition, JobNotFound, StoreError
from computeops_grid.jobs.record import JobRecord, StoredRecord
from computeops_grid.jobs.schema import MIGRATIONS, SCHEMA_VERSION
from computeops_grid.jobs.state import JobState, is_allowed

log = logging.getLogger(__name__)
# (job id, new state, message, exit code, native id, work dir); None leaves a column as it is
Change = tuple[str, JobState, "str | None", "int | None", "str | None", "Path | None"]
# (job id, the wrapper's report, image digest, runtime, node host name): what ran, see set_provenances
Provenance = tuple[str, "dict[str, object]", "str | None", "str | None", "str | None"]

_COLUMNS = (
    "id, name, backend, state, native_id, bulk_id, idx, parent_id, exit_code, message, "
    "source, workdir, params, spec, created, updated"
)
_READ_COLUMNS = _COLUMNS + ", image_digest, runtime, node"  # provenance columns: written apart
_SUMMARY_COLUMNS = (
    "id, name, backend, state, native_id, bulk_id, idx, exit_code, message, created, updated, "
    "image_digest, runtime, node"
)


@dataclass  # not frozen: a frozen dataclass takes 3x as long to build (100,000 rows per `list`)
class JobSummary:
    """What listings need, read without parsing the job description."""

    id: str
    name: str
    backend: str
    state: JobState
    native_id: str | None
    bulk_id: str | None
    index: int
    exit_code: int | None
    message: str
    created: float
    updated: float
    image_digest: str | None = None  # provenance: what ran (set once the wrapper's report is back)
    runtime: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class Transition:
    job_id: str
    from_state: JobState | None
    to_state: JobState
    at: float
    message: str


def owner_token() -> str:
    """Identifies this process as the claimer of jobs it is submitting."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """False when the claiming process is certainly gone (same host, pid not running)."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # cannot tell for another host: assume alive, sync waits for the lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class JobStore:
    def __init__(self, path: Path, *, timeout: float = 60.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open the job store {path}: {exc}",
                hint="set COPS_GRID_HOME to another directory, or move the damaged file away",
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------
    def _migrate(self) -> None:
        with self._write():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the job store {self.path} has schema version {version}, newer than this "
                    f"cops-grid understands ({SCHEMA_VERSION})",
                    hint="upgrade cops-grid",
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                log.info("migrating job store %s to schema version %d", self.path, target)
                for statement in MIGRATIONS[target]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={target:d}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the job store {self.path} is busy: {exc}", hint="retry in a moment") from None
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ----------------------------------------------------------------
    def add(self, records: Sequence[JobRecord]) -> None:
        """Record new jobs (state ``new``) in one transaction: all or none."""
        now = time.time()
        rows = []
        for rec in records:
            rec.created = rec.updated = now
            rows.append(
                (
                    rec.id, rec.name, rec.backend, JobState.NEW.value, rec.native_id, rec.bulk_id,
                    rec.index, rec.parent_id, None, rec.message, rec.source,
                    str(rec.workdir) if rec.workdir else None, json.dumps(rec.params),
                    rec.spec.model_dump_json(), now, now,
                )
            )  # fmt: skip
        with self._write() as db:
            db.executemany(f"INSERT INTO jobs ({_COLUMNS}) VALUES ({','.join('?' * 16)})", rows)
            db.executemany(
                "INSERT INTO history (job_id, from_state, to_state, at, message) VALUES (?, NULL, ?, ?, '')",
                [(r[0], JobState.NEW.value, now) for r in rows],
            )

    def claim(self, ids: Sequence[str], owner: str | None = None) -> list[JobRecord]:
        """Atomically move the given jobs that are still ``new`` to ``submitting``.

        Returns only the jobs this call claimed: a job another process claimed first
        is not returned, so it is never submitted twice.
        """
        return self.get_many(self.claim_ids(ids, owner))

    def claim_ids(self, ids: Sequence[str], owner: str | None = None) -> list[str]:
        """:meth:`claim` returning the claimed ids only (the caller holds the records)."""
        owner = owner or owner_token()
        now = time.time()
        with self._write() as db:
            claimed: list[str] = []
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT id FROM jobs WHERE state='new' AND id IN ({marks})", chunk
                ).fetchall()
                claimed.extend(r[0] for r in rows)
            self._set_state(db, claimed, JobState.NEW, JobState.SUBMITTING, now, owner=owner)
        return claimed

    def _set_state(
        self,
        db: sqlite3.Connection,
        ids: Sequence[str],
        old: JobState,
        new: JobState,
        now: float,
        *,
        owner: str | None = None,
        message: str = "",
    ) -> None:
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            db.execute(
                f"UPDATE jobs SET state=?, owner=?, updated=? WHERE id IN ({marks})",
                (new.value, owner, now, *chunk),
            )
        db.executemany(
            "INSERT INTO history (job_id, from_state, to_state, at, message) VALUES (?, ?, ?, ?, ?)",
            [(i, old.value, new.value, now, message) for i in ids],
        )

    def transition(
        self,
        job_id: str,
        new: JobState,
        *,
        message: str | None = None,
        exit_code: int | None = None,
        native_id: str | None = None,
        workdir: Path | None = None,
    ) -> bool:
        """Move one job to ``new``; refuses illegal moves. Returns False when unchanged."""
        return bool(self.transitions([(job_id, new, message, exit_code, native_id, workdir)], strict=True))

    def transitions(
        self,
        changes: Iterable[Change],
        *,
        strict: bool = False,
    ) -> int:
        """Apply many ``(id, state, message, exit_code, native_id, workdir)`` changes in one
        transaction. An illegal move raises when ``strict``, otherwise it is skipped and
        logged (status polls may report a state the job already moved past)."""
        now = time.time()
        changed = 0
        changes = list(changes)
        updates: list[tuple[str, tuple[object, ...]]] = []  # written together, in order, below
        history: list[tuple[str, str, str, float, str]] = []
        with self._write() as db:
            rows = _current_rows(db, [c[0] for c in changes])  # one read per 500 jobs, not per job
            for job_id, new, message, exit_code, native_id, workdir in changes:
                row = rows.get(job_id)
                if row is None:
                    raise JobNotFound(f"no job {job_id} in the store")
                old = JobState(row[0])
                current = dict(zip(("message", "exit_code", "native_id", "workdir"), row[1:]))
                if not is_allowed(old, new):
                    if strict:
                        raise IllegalTransition(f"job {job_id}: {old} -> {new} is not allowed")
                    log.info("ignoring %s -> %s for job %s", old, new, job_id)
                    continue
                sets = ["state=?", "updated=?"]
                values: list[object] = [new.value, now]
                for column, value in (
                    ("message", message),
                    ("exit_code", exit_code),
                    ("native_id", native_id),
                    ("workdir", str(workdir) if workdir else None),
                ):
                    if value is not None and value != current[column]:
                        sets.append(f"{column}=?")
                        values.append(value)
                if old == new and len(sets) == 2:
                    continue
                if new != JobState.SUBMITTING:
                    sets.append("owner=NULL")
                updates.append((f"UPDATE jobs SET {', '.join(sets)} WHERE id=?", (*values, job_id)))
                update = (new.value, message, exit_code, native_id, str(workdir) if workdir else None)
                rows[job_id] = tuple(u if u is not None else r for u, r in zip(update, row))
                if old != new:
                    history.append((job_id, old.value, new.value, now, message or ""))
                changed += 1
            for sql, group in itertools.groupby(updates, key=lambda u: u[0]):  # runs of one statement
                db.executemany(sql, [values for _, values in group])
            db.executemany(
                "INSERT INTO history (job_id, from_state, to_state, at, message) VALUES (?,?,?,?,?)", history
            )
        return changed

    def delete(self, ids: Sequence[str]) -> None:
        with self._write() as db:
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM history WHERE job_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM provenance WHERE job_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", chunk)

    # -- reading ----------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        records = self.get_many([job_id])
        if not records:
            raise JobNotFound(f"no job {job_id} in the store", hint="`cops-grid list` shows the known jobs")
        return records[0]

    def get_many(self, ids: Sequence[str]) -> list[JobRecord]:
        """Records for ``ids`` in the order given (unknown ids are left out)."""
        found: dict[str, JobRecord] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT {_READ_COLUMNS} FROM jobs WHERE id IN ({marks})", chunk):
                found[row[0]] = _record(row)
        return [found[i] for i in ids if i in found]

    def resolve(self, prefixes: Sequence[str]) -> list[str]:
        """Full ids for ids or unique id prefixes (like git); unknown ones raise."""
        out = []
        for prefix in prefixes:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
                (prefix, prefix + "\U0010ffff"),
            ).fetchall()
            if not rows:
                raise JobNotFound(
                    f"no job {prefix} in the store", hint="`cops-grid list` shows the known jobs"
                )
            if len(rows) > 1 and rows[0][0] != prefix:
                raise JobNotFound(f"job id prefix {prefix} is ambiguous", hint="give more characters")
            out.append(rows[0][0])
        return out

    def ids(self, *, states: Iterable[JobState] = (), backend: str | None = None) -> list[str]:
        query, args = _filter(states, backend)
        return [r[0] for r in self._db.execute(f"SELECT id FROM jobs{query} ORDER BY created, id", args)]

    def records(self, *, states: Iterable[JobState] = (), backend: str | None = None) -> list[JobRecord]:
        query, args = _filter(states, backend)
        rows = self._db.execute(f"SELECT {_READ_COLUMNS} FROM jobs{query} ORDER BY created, id", args)
        return [_record(r) for r in rows]

    def summaries(
        self,
        *,
        states: Iterable[JobState] = (),
        backend: str | None = None,
        limit: int | None = None,
        image_digest: str | None = None,
    ) -> list[JobSummary]:
        """Listing rows; ``image_digest`` (``sha256:<hex>``, or a prefix of it) keeps the jobs
        that ran that image."""
        query, args = _filter(states, backend)
        if image_digest is not None:
            query += (" AND " if query else " WHERE ") + "image_digest >= ? AND image_digest < ?"
            args += [image_digest, image_digest + "\U0010ffff"]
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM jobs{query} ORDER BY created, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._db.execute(sql, args)
        return [JobSummary(r[0], r[1], r[2], _STATES[r[3]], *r[4:]) for r in rows]

    # -- provenance (what ran; see logic/provenance.py) ----------------------------
    def set_provenance(
        self,
        job_id: str,
        report: dict[str, object],
        *,
        digest: str | None,
        runtime: str | None,
        node: str | None,
    ) -> None:
        """Keep the wrapper's report (whole: sections this version does not know are kept too)."""
        self.set_provenances([(job_id, report, digest, runtime, node)])

    def set_provenances(self, items: Iterable[Provenance]) -> None:
        """:meth:`set_provenance` for many jobs in one transaction (a refresh that saw 10,000 end)."""
        now = time.time()
        rows = [(i, json.dumps(r, sort_keys=True), now, d, rt, n) for i, r, d, rt, n in items]
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO provenance (job_id, report, recorded) VALUES (?, ?, ?)",
                [r[:3] for r in rows],
            )
            db.executemany(
                "UPDATE jobs SET image_digest=?, runtime=?, node=? WHERE id=?", [(*r[3:], r[0]) for r in rows]
            )

    def provenance(self, job_id: str) -> dict[str, object] | None:
        row = self._db.execute("SELECT report FROM provenance WHERE job_id=?", (job_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def owners(self, ids: Sequence[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            out.update(
                self._db.execute(f"SELECT id, owner FROM jobs WHERE id IN ({marks})", chunk).fetchall()
            )
        return out

    def history(self, job_id: str) -> list[Transition]:
        rows = self._db.execute(
            "SELECT job_id, from_state, to_state, at, message FROM history WHERE job_id=? ORDER BY seq",
            (job_id,),
        )
        return [Transition(r[0], JobState(r[1]) if r[1] else None, JobState(r[2]), r[3], r[4]) for r in rows]


_CURRENT = "state, message, exit_code, native_id, workdir"  # what transitions compare


def _current_rows(db: sqlite3.Connection, ids: Sequence[str]) -> dict[str, tuple[object, ...]]:
    """What :meth:`JobStore.transitions` compares against, for ``ids``, by id."""
    rows: dict[str, tuple[object, ...]] = {}
    for chunk in _chunks(list(dict.fromkeys(ids)), 500):
        marks = ",".join("?" * len(chunk))
        for row in db.execute(f"SELECT id, {_CURRENT} FROM jobs WHERE id IN ({marks})", chunk):
            rows[row[0]] = tuple(row[1:])
    return rows


def _filter(states: Iterable[JobState], backend: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    state_list = [s.value for s in states]
    if state_list:
        clauses.append(f"state IN ({','.join('?' * len(state_list))})")
        args.extend(state_list)
    if backend:
        clauses.append("backend=?")
        args.append(backend)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


_STATES = {s.value: s for s in JobState}  # 100,000 rows: a dict lookup, not Enum.__call__


def _record(row: tuple[object, ...]) -> JobRecord:
    (jid, _name, backend, state, native_id, bulk_id, idx, parent, exit_code, message,
     source, workdir, params, spec, created, updated, digest, runtime, node) = row  # fmt: skip
    return StoredRecord(
        str(spec),
        id=str(jid),
        backend=str(backend),
        state=_STATES[str(state)],
        native_id=native_id if native_id is None else str(native_id),
        bulk_id=bulk_id if bulk_id is None else str(bulk_id),
        index=int(idx),  # type: ignore[call-overload]
        parent_id=parent if parent is None else str(parent),
        exit_code=exit_code if exit_code is None else int(exit_code),  # type: ignore[call-overload]
        message=str(message),
        source=str(source),
        created=float(created),  # type: ignore[arg-type]
        updated=float(updated),  # type: ignore[arg-type]
        workdir=Path(str(workdir)) if workdir else None,
        params=json.loads(str(params)) if params != "{}" else {},
        image_digest=None if digest is None else str(digest),
        runtime=None if runtime is None else str(runtime),
        node=None if node is None else str(node),
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
