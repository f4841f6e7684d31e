"""Draft a migration: `python -m collector.db.revision "message"` (autogenerate; then review it)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from collector.db.engine import Database
from collector.db.migrate import alembic_config, upgrade


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(db)
        versions = Path(__file__).resolve().parent / "migrations" / "versions"
        number = len(list(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))) + 1
        slug = "_".join(message.lower().split())[:40]
        cfg = alembic_config(db)
        cfg.set_main_option("file_template", "%%(rev)s")
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{number:04d}_{slug}")
        db.dispose()


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "change")
