"""SQLite access for one studio home: ``open_db(home)`` returns a ``Database`` (a connection factory).

Why this shape:
- one ``sqlite3`` connection per thread (sqlite3 objects must not be shared across threads; training
  runs on a background thread of the kernel), created on first use;
- WAL so readers (widgets) never block the writer (a training job), ``busy_timeout`` so two kernels
  writing at once wait instead of failing, foreign keys on so deletes cascade;
- connections are in autocommit mode and ``transaction()`` issues ``BEGIN IMMEDIATE``: the write lock
  is taken up front, so read-then-write sequences (state checks) cannot interleave between kernels;
- migrations are applied on open inside one such transaction, so two kernels opening the same home at
  once apply each migration exactly once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import ResourceUnavailableError
from nerf_widgets.store.migrations import MIGRATIONS, Migration

DB_FILE = "studio.db"
BUSY_TIMEOUT_MS = 30_000


def utc_now() -> float:
    """Unix seconds (UTC): the unit of every ``*_at`` column."""
    return time.time()


class _Slot:
    """A thread's connection and transaction depth; closing happens when the thread (and so the slot) goes."""

    __slots__ = ("conn", "depth", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.depth = conn, 0

    def __del__(self) -> None:
        self.conn.close()


class Database:
    """Connection factory for ``<home>/studio.db``; cheap to share between threads and objects."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()  # live threads' slots, for close()
        self._slots_lock = threading.Lock()

    def _slot(self) -> _Slot:
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            slot = _Slot(_connect(self.path))
            self._local.slot = slot
            with self._slots_lock:
                self._slots.add(slot)
        return slot

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created on first use, closed when the thread ends)."""
        return self._slot().conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error); nested calls join the outer one."""
        slot = self._slot()
        if slot.depth:
            slot.depth += 1
            try:
                yield slot.conn
            finally:
                slot.depth -= 1
            return
        _begin_immediate(slot.conn)
        slot.depth = 1
        try:
            yield slot.conn
        except BaseException:
            slot.conn.execute("ROLLBACK")
            raise
        else:
            slot.conn.execute("COMMIT")
        finally:
            slot.depth = 0

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a read and return all rows."""
        return self.connection().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        return self.connection().execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one write in its own transaction unless a ``transaction()`` is already open."""
        with self.transaction() as conn:
            return conn.execute(sql, params)

    def schema_version(self) -> int:
        row = self.query_one("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    def close(self) -> None:
        """Close every connection this object made (call when the Studio is discarded)."""
        with self._slots_lock:
            slots, self._slots = list(self._slots), weakref.WeakSet()
        for slot in slots:
            slot.conn.close()
        self._local = threading.local()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _begin_immediate(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            raise ResourceUnavailableError(
                f"The studio database is busy (another kernel held it for more than {BUSY_TIMEOUT_MS // 1000} s); "
                "try again."
            ) from err
        raise


def _split_sql(sql: str) -> list[str]:
    """Split a script into complete statements (``executescript`` would commit our transaction)."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return [s for s in statements if s.rstrip(";").strip()]


def apply_migrations(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply pending migrations in one transaction; returns the versions applied by this call."""
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise RuntimeError(f"migration versions must be unique and increasing, got {versions}")
    applied: list[int] = []
    with db.transaction() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at REAL NOT NULL)"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        for mig in migrations:
            if mig.version <= current:
                continue
            for statement in _split_sql(mig.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (mig.version, mig.name, utc_now()))
            applied.append(mig.version)
    return applied


def open_db(home: str | PathLike[str]) -> Database:
    """Open (creating if needed) ``<home>/studio.db``, switch it to WAL and apply pending migrations."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    db = Database(home / DB_FILE)
    conn = db.connection()
    for attempt in range(100):  # journal_mode needs a moment alone with the file when another kernel races us
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError:
            time.sleep(0.05 * (attempt + 1))
    else:
        raise ResourceUnavailableError(f"Could not switch {db.path} to WAL mode: the file stays locked.")
    if str(mode).lower() != "wal":
        raise ResourceUnavailableError(f"{db.path} cannot use WAL mode (is the home on a network drive?)")
    apply_migrations(db)
    return db


__all__ = ["DB_FILE", "Database", "apply_migrations", "open_db", "utc_now"]
