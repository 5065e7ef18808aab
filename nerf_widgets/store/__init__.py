"""Store layer: SQLite (WAL) with migrations (``db``, ``migrations``), repositories and project locks."""
