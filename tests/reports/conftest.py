"""Report tests reuse the collector's database fixtures (SQLite and a real PostgreSQL)."""

from tests.collector.conftest import db, db_url, pg_server  # noqa: F401
