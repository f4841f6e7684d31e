"""The collector's database: SQLAlchemy 2 models and one Alembic history for SQLite and PostgreSQL.

- `engine.Database` — engine plus `read()` / `write()` sessions (write = one transaction).
- `models` — the core tables (contracts, hosts, tokens, keys, runs, findings, samples, gaps,
  downtime). `migrate.upgrade(db)` applies migrations (`xunjian db upgrade`; `serve` does it on
  start for SQLite).

Adding tables (reports, outbox, alerts …):
1. Put the models in your own module, e.g. `collector/db/reports.py`, subclassing
   `collector.db.models.Base` (typed `Mapped[...]`; datetimes are UTC-aware automatically via
   `UtcDateTime`; integer keys use `types.BigIntPK`). Import the module in `db/all_models.py`.
2. Write a migration in `collector/db/migrations/versions/`, named `NNNN_<what>.py` with
   `revision = "NNNN_<what>"` and `down_revision` = the newest existing revision. To draft it:
   `.venv/bin/python -m collector.db.revision "reports and outbox"` (autogenerates against a
   scratch SQLite upgraded to the current heads), then read and tidy the result.
   If two migrations land with the same parent, both are applied ("heads"); make the later one
   depend on the other when you notice.
3. `tests/collector/test_db.py::test_models_match_migrations` fails if models and migrations
   disagree, on SQLite and PostgreSQL.
"""
