"""Database open: WAL, pragmas, migrations applied exactly once, concurrent opens of one home."""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nerf_widgets.store.db import apply_migrations, open_db
from nerf_widgets.store.migrations import MIGRATIONS, Migration

ROOT = Path(__file__).resolve().parents[2]


def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    conn = db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"projects", "images", "state_history", "jobs", "exports", "schema_version"} <= tables
    assert db.schema_version() == MIGRATIONS[-1].version
    db.close()


def test_migrations_applied_once(tmp_path: Path) -> None:
    open_db(tmp_path).close()
    db = open_db(tmp_path)
    rows = db.query("SELECT version FROM schema_version ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
    assert apply_migrations(db) == []


def test_appended_migration_runs_on_next_open_and_failed_one_rolls_back(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    nxt = MIGRATIONS[-1].version + 1
    extra = [*MIGRATIONS, Migration(nxt, "demo", "CREATE TABLE demo (x INTEGER);\nINSERT INTO demo VALUES (1);")]
    assert apply_migrations(db, extra) == [nxt]
    assert db.query_one("SELECT x FROM demo")["x"] == 1
    broken = [*extra, Migration(nxt + 1, "broken", "CREATE TABLE t2 (x INTEGER);\nINSERT INTO nowhere VALUES (1);")]
    with pytest.raises(Exception, match="nowhere"):
        apply_migrations(db, broken)
    assert db.schema_version() == nxt
    assert db.query_one("SELECT name FROM sqlite_master WHERE name = 't2'") is None


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with db.transaction() as conn:
            conn.execute("INSERT INTO projects VALUES ('prj_0000000000000001', 'a', '', 'Created', 0, 0)")
            raise RuntimeError("boom")
    assert db.query("SELECT * FROM projects") == []


def test_one_connection_per_thread_closed_when_the_thread_ends(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    seen: list[sqlite3.Connection] = []
    for _ in range(5):
        t = threading.Thread(target=lambda: seen.append(db.connection()))
        t.start()
        t.join()
    assert db.connection() is db.connection()
    assert len({id(c) for c in seen}) == 5 and all(c is not db.connection() for c in seen)
    gc.collect()
    for conn in seen:  # finished threads do not leak open connections (ingest uses short-lived pools)
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    main = db.connection()
    db.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        main.execute("SELECT 1")
    assert db.connection().execute("SELECT 1").fetchone()[0] == 1  # reopened lazily


_CHILD = """
import sys
from nerf_widgets.store.db import open_db
db = open_db(sys.argv[1])
for i in range(50):
    with db.transaction() as conn:
        conn.execute("INSERT INTO projects VALUES (?, ?, '', 'Created', 0, 0)", (f"prj_{i:016x}", f"child {i}"))
print(db.schema_version())
"""


def test_concurrent_open_from_subprocess_and_threads(tmp_path: Path) -> None:
    """A second process and several threads open the same fresh home and write at once: no errors, no loss."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            db = open_db(tmp_path)
            for i in range(20):
                db.execute("INSERT INTO projects VALUES (?, ?, '', 'Created', 0, 0)",
                           (f"prj_{(k + 1) * 1000 + i:016x}", f"thread {k} {i}"))
        except BaseException as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not errors
    db = open_db(tmp_path)
    assert db.query_one("SELECT COUNT(*) AS n FROM projects")["n"] == 50 + 3 * 20
    assert db.query_one("SELECT COUNT(*) AS n FROM schema_version")["n"] == len(MIGRATIONS)
    assert int(out.strip()) == MIGRATIONS[-1].version
