"""Schema migrations, applied in order on open (see ``store.db``).

To change the schema, APPEND a ``Migration`` with the next version number; never edit one that has
shipped (homes in the wild already ran it). Each migration runs inside the same ``BEGIN IMMEDIATE``
transaction as the ``schema_version`` bump, so a kernel that crashes half-way leaves nothing applied.
Times are stored as REAL Unix seconds (UTC); JSON blobs as TEXT.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: ``sql`` may hold several statements separated by ``;``."""

    version: int
    name: str
    sql: str


V1_CORE = Migration(
    1,
    "projects, images, state history, jobs, exports",
    """
    CREATE TABLE projects (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        state       TEXT NOT NULL,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );
    CREATE UNIQUE INDEX projects_name ON projects (name COLLATE NOCASE);

    CREATE TABLE images (
        id            TEXT PRIMARY KEY,
        project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        original_name TEXT NOT NULL,
        source_id     TEXT,
        format        TEXT NOT NULL,
        original_ext  TEXT NOT NULL,
        working_ext   TEXT NOT NULL,
        size_bytes    INTEGER NOT NULL,
        orig_width    INTEGER NOT NULL,
        orig_height   INTEGER NOT NULL,
        width         INTEGER NOT NULL,
        height        INTEGER NOT NULL,
        has_alpha     INTEGER NOT NULL,
        focal_mm      REAL,
        focal_35mm    REAL,
        camera_make   TEXT,
        camera_model  TEXT,
        sha256        TEXT NOT NULL,
        sharpness     REAL NOT NULL,
        blurry        INTEGER NOT NULL,
        frame_time    REAL,
        position      INTEGER NOT NULL,
        created_at    REAL NOT NULL,
        UNIQUE (project_id, sha256)
    );
    CREATE INDEX images_project ON images (project_id, position);

    CREATE TABLE state_history (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        from_state  TEXT,
        to_state    TEXT NOT NULL,
        transition  TEXT NOT NULL,
        reason      TEXT NOT NULL DEFAULT '',
        created_at  REAL NOT NULL
    );
    CREATE INDEX state_history_project ON state_history (project_id, id);

    CREATE TABLE jobs (
        id            TEXT PRIMARY KEY,
        project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        type          TEXT NOT NULL,
        params_json   TEXT NOT NULL DEFAULT '{}',
        state         TEXT NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        progress_json TEXT NOT NULL DEFAULT '{}',
        error         TEXT,
        traceback     TEXT,
        created_at    REAL NOT NULL,
        started_at    REAL,
        finished_at   REAL,
        heartbeat_at  REAL,
        run_dir       TEXT
    );
    CREATE INDEX jobs_project ON jobs (project_id, created_at);
    CREATE INDEX jobs_state ON jobs (state);

    CREATE TABLE exports (
        id           TEXT PRIMARY KEY,
        project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        job_id       TEXT REFERENCES jobs (id) ON DELETE SET NULL,
        format       TEXT NOT NULL,
        options_json TEXT NOT NULL DEFAULT '{}',
        path         TEXT,
        status       TEXT NOT NULL,
        size_bytes   INTEGER,
        created_at   REAL NOT NULL
    );
    CREATE INDEX exports_project ON exports (project_id, created_at);
    """,
)

V2_JOB_MONITORING = Migration(
    2,
    "job attempts, metric series, alerts (jobs layer)",
    """
    CREATE TABLE job_attempts (
        job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        number       INTEGER NOT NULL,
        state        TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        host         TEXT NOT NULL,
        kernel_id    TEXT NOT NULL,
        start_step   INTEGER,
        end_step     INTEGER,
        error        TEXT,
        traceback    TEXT,
        started_at   REAL NOT NULL,
        finished_at  REAL,
        PRIMARY KEY (job_id, number)
    );

    CREATE TABLE metric_points (
        job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        step       INTEGER NOT NULL,
        elapsed_s  REAL NOT NULL,
        value      REAL,
        PRIMARY KEY (job_id, name, step)
    ) WITHOUT ROWID;

    CREATE TABLE job_alerts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        code         TEXT NOT NULL,
        severity     TEXT NOT NULL,
        message      TEXT NOT NULL,
        details_json TEXT NOT NULL DEFAULT '{}',
        created_at   REAL NOT NULL
    );
    CREATE INDEX job_alerts_job ON job_alerts (job_id, id);
    """,
)

V3_REGIONS = Migration(
    3,
    "region of interest per project (poses layer's proposal and the person's box)",
    """
    CREATE TABLE regions (
        project_id    TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
        region_json   TEXT,
        proposed_json TEXT,
        poses_key     TEXT NOT NULL DEFAULT '',
        updated_at    REAL NOT NULL
    );
    """,
)

# Append new migrations here (next version: 4).
MIGRATIONS: list[Migration] = [V1_CORE, V2_JOB_MONITORING, V3_REGIONS]

__all__ = ["MIGRATIONS", "Migration"]
