"""`xunjian serve`: the collector API under uvicorn (TLS when a certificate is configured)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import click

from collector.cmd_common import config_option, open_db, settings_or_exit


@click.command()
@config_option
@click.option("--host", default=None, help="listen address (overrides listen)")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="listen port")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="uvicorn processes")
def serve(
    config: Optional[Path], host: Optional[str], port: Optional[int], workers: Optional[int]
) -> None:
    """Start the collector (SQLite databases are migrated first)."""
    import uvicorn

    settings = settings_or_exit(config, workers=workers)
    listen_host = host or settings.host
    listen_port = port or settings.port
    open_db(settings).dispose()
    # Workers build their app from the environment: hand them the same settings.
    if config is not None:
        os.environ["XUNJIAN_CONFIG"] = str(config.resolve())
    os.environ["XUNJIAN_LISTEN"] = f"{listen_host}:{listen_port}"
    os.environ["XUNJIAN_WORKERS"] = str(settings.workers)
    os.environ["XUNJIAN_LOG_LEVEL"] = settings.log_level
    uvicorn.run(
        "collector.app:app_from_env",
        factory=True,
        host=listen_host,
        port=listen_port,
        workers=settings.workers,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        proxy_headers=False,
    )
