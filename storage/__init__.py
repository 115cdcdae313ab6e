"""Storage: SQLModel tables, repositories (keyword-only query functions taking a session),
Alembic migrations and the key-value store. Turns core objects into rows; decides nothing."""
