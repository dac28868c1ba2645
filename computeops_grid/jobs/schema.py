"""Job store schema and its migrations (``PRAGMA user_version`` is the version)."""

from __future__ import annotations

SCHEMA_VERSION = 2

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            backend TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('new','submitting','queued','running','completed','failed','cancelled')),
            native_id TEXT,
            bulk_id TEXT,
            idx INTEGER NOT NULL DEFAULT 0,
            parent_id TEXT,
            exit_code INTEGER,
            message TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            workdir TEXT,
            params TEXT NOT NULL DEFAULT '{}',
            spec TEXT NOT NULL,
            owner TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )""",
        "CREATE INDEX jobs_state ON jobs (state)",
        "CREATE INDEX jobs_bulk ON jobs (bulk_id)",
        "CREATE INDEX jobs_native ON jobs (backend, native_id)",
        "CREATE INDEX jobs_created ON jobs (created, id)",
        """CREATE TABLE history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            from_state TEXT,
            to_state TEXT NOT NULL,
            at REAL NOT NULL,
            message TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX history_job ON history (job_id)",
    ],
    # 2: provenance, what actually ran (jobs/provenance.py): the wrapper's whole report in its own
    # table, and the columns `list` shows and filters on next to the job
    2: [
        "ALTER TABLE jobs ADD COLUMN image_digest TEXT",
        "ALTER TABLE jobs ADD COLUMN runtime TEXT",
        "ALTER TABLE jobs ADD COLUMN node TEXT",
        "CREATE INDEX jobs_image_digest ON jobs (image_digest)",
        """CREATE TABLE provenance (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            report TEXT NOT NULL,
            recorded REAL NOT NULL
        )""",
    ],
}
