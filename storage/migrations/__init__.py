"""Alembic migration scripts, shipped in the package; run them through `storage.migrate`."""
