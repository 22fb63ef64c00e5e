"""Alembic migrations of the meeting tables (own version table ``meeting_alembic_version``)."""
