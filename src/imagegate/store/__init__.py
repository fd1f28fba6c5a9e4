"""The only code that knows tables and SQL: one store for SQLite and PostgreSQL."""
