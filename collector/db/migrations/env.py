"""Alembic environment: the engine comes from collector.db.migrate (never from an .ini file)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

import collector.db.all_models  # noqa: F401  (registers every table on Base.metadata)
from collector.db.models import Base

config = context.config
engine: Engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs via table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
