"""Alembic migrations of every table (``parley.schema``), run by ``Database.migrate()``
at start-up; found by path (``storage.db.MIGRATIONS_DIR``), so storage imports nothing here."""
