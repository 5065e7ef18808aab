"""Store layer: SQLite (WAL) with migrations (``db``, ``migrations``), repositories, the record types they
return (``records``) and project locks. Imports only ``core``."""
