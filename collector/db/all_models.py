"""Imports every module that defines tables, so Alembic and `create_all` see the whole schema.

Add your models module here when you add tables (see collector/db/__init__.py).
"""

from collector.db import (
    alerts,  # noqa: F401
    job_slots,  # noqa: F401
    models,  # noqa: F401
    models_reports,  # noqa: F401
    models_ui,  # noqa: F401
)
