"""The collector's FastAPI application: `create_app(settings)`.

Request bodies pass through `BodyLimit` first: gzip is inflated as it streams in and counted
after decompression, so neither a large body nor a gzip bomb is ever held in memory beyond the
limit. Every error is JSON; schema errors name the field path; nothing a client sends should
produce a 500, and the catch-all handler logs whatever still does.
"""

from __future__ import annotations

import codecs
import gc
import logging
import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Optional

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent import __version__
from collector.alerts.engine import Alerting
from collector.api import API_PREFIX, ROUTERS
from collector.api.agent_lane import AgentLane
from collector.api.body import GZIP_BODY, add_components
from collector.api.ops import router as ops_router
from collector.auth import HostCredentials
from collector.db.engine import Database
from collector.group_commit import run_writer, sample_writer
from collector.ingest import IngestError
from collector.metrics import Metrics
from collector.scheduler import Scheduler
from collector.settings import CollectorSettings, load_settings
from collector.ui.routes import mount_console

log = logging.getLogger("collector")

REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_encoding",
    422: "invalid",
}


class BodyLimit:
    """Inflate `Content-Encoding: gzip` on the fly and refuse bodies over `max_bytes` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            await _reply(scope, receive, send, 415, "Content-Encoding must be gzip or identity")
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            # PostgreSQL text cannot hold NUL; no identifier or filter here contains one.
            await _reply(scope, receive, send, 422, "NUL characters are not allowed in the URL")
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await _reply(scope, receive, send, 413, f"body over {self.max_bytes} bytes")
            return
        posted: Optional[list[bytes]] = None
        if encoding == "gzip":
            kept = [
                (k, v)
                for k, v in scope["headers"]
                if k not in (b"content-encoding", b"content-length")
            ]
            posted = []
            scope = {**scope, "headers": kept, GZIP_BODY: posted}
        json_body = "json" in headers.get("content-type", "")
        await self.app(scope, self._checked(receive, posted, json_body), send)

    def _checked(self, receive: Receive, posted: Optional[list[bytes]], json_body: bool) -> Receive:
        """`receive` that inflates, counts, and (for JSON) checks UTF-8 as the body streams in;
        a gzip body's own bytes are kept in `posted` (see GZIP_BODY)."""
        limit = self.max_bytes
        gzip = posted is not None
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        utf8 = codecs.getincrementaldecoder("utf-8")() if json_body else None
        seen = {"raw": 0, "out": 0}

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk: bytes = message.get("body", b"")
            last = not message.get("more_body", False)
            seen["raw"] += len(chunk)
            if seen["raw"] > limit:
                raise HTTPException(413, f"body over {limit} bytes")
            if inflater is not None:
                assert posted is not None
                posted.append(chunk)
                try:
                    # Ask for at most one byte more than allowed: that byte proves the excess.
                    chunk = inflater.decompress(chunk, limit - seen["out"] + 1)
                except zlib.error as exc:
                    raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
                seen["out"] += len(chunk)
                if seen["out"] > limit:
                    raise HTTPException(413, f"body over {limit} bytes after decompression")
                if last and not inflater.eof:
                    raise HTTPException(400, "gzip body is truncated")
                if last and inflater.unused_data:  # what we inflated is what gets stored
                    raise HTTPException(400, "gzip body has data after the end of its stream")
            if utf8 is not None:
                try:
                    utf8.decode(chunk, last)
                except UnicodeDecodeError as exc:
                    raise HTTPException(
                        422, [{"type": "json_invalid", "loc": ["body"], "msg": f"not UTF-8: {exc}"}]
                    ) from exc
            return {**message, "body": chunk}

        return wrapped


async def _reply(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's error list without `input` (which would echo up to 8 MiB back)."""
    return [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()]


def create_app(settings: CollectorSettings, db: Optional[Database] = None) -> FastAPI:
    database = db or Database(settings.db_url)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(this: FastAPI) -> AsyncIterator[None]:
        clock = Scheduler(database, settings) if this.state.run_scheduler else None  # serve only
        if clock is not None:
            clock.start()
        yield
        if clock is not None:
            clock.stop()
        if db is None:
            database.dispose()

    app = FastAPI(
        title="xunjian collector",
        version=__version__,
        description="Remote inspections (远程巡检) under maintenance contracts: agents enroll "
        "and post runs, samples and heartbeats; people and scripts read with API keys.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.metrics = metrics
    app.state.run_scheduler = False
    app.state.alerting = Alerting.from_settings(database, settings)
    app.state.host_credentials = HostCredentials()
    app.state.run_writer = run_writer(database, metrics)
    app.state.sample_writer = sample_writer(database, metrics, settings.silence_minutes)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    add_components(app)
    app.include_router(ops_router)
    mount_console(app, settings)
    app.add_middleware(AgentLane)  # agents' runs, ahead of FastAPI (`agent_lane`)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # outside the lane

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        metrics.reject("invalid")
        summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": errors, "error": summary}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        metrics.reject(REASONS.get(exc.status_code, str(exc.status_code)))
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(IngestError)
    async def _ingest(_: Request, exc: IngestError) -> JSONResponse:
        metrics.reject(REASONS.get(exc.status, str(exc.status)))
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        metrics.reject("server_error")
        return JSONResponse({"detail": "internal error; the collector log has details"}, 500)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (`xunjian serve` passes the settings file via XUNJIAN_CONFIG)."""
    logging.basicConfig(level=os.environ.get("XUNJIAN_LOG_LEVEL", "info").upper())
    app = create_app(load_settings())
    app.state.run_scheduler = True  # reports, outbox, alerts, availability sweep (scheduler.py)
    _settle_heap()
    return app


GC_THRESHOLDS = (500_000, 20, 100)
"""A serving worker's collection thresholds (CPython's defaults: 700, 10, 10).

The young generation's limit counts objects allocated and not yet freed, so what a young
collection walks is mostly the runs in flight: ~1,100 tracked objects each once parsed and
judged, a hundred of them in each of two workers under the bench's 200 agents. With a limit of
100,000 that was reached every few seconds, and each collection walked the runs in flight for
50–70 ms of CPU on average (up to 124 ms), with the event loop stopped meanwhile: 10–39 young
collections a worker in the bench's 40 s, 3–7.5 % of its CPU. At 500,000, above what the runs in
flight reach, none ran in the bench. The price is memory: garbage in cycles (a few hundred objects a
collection here) waits longer to be found — at worst half a million objects, should a load
make nothing but cyclic garbage."""


def _settle_heap() -> None:
    """Keep the cyclic garbage collector off the hot path of a long-running worker.

    A worker holds ~700,000 objects once FastAPI, SQLAlchemy, pydantic and the check catalogs
    are imported, none of them garbage, and under load a hundred parsed runs (thousands of
    objects each) wait for their batch. At CPython's defaults a 50 KB run's validation set off
    collections that walked all of that again and again: 1.2–1.8 ms per validation instead of
    0.4 ms in a quiet process. Freezing what exists at start moves it out of the collector's
    sight, and larger thresholds make collections rare. 100 agents on one worker: 10.6 → 7.5 ms
    of CPU per run with the heap frozen and a young generation of 20,000 (the other thresholds
    at their defaults); 5.75 → 5.33 ms from there to (100,000, 20, 100); 5.19 ms with no
    collection at all. See GC_THRESHOLDS for the young generation's limit now.
    Cycles are still collected, only less often. Not for tests or the CLI, which are
    short-lived."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
