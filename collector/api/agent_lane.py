"""Agents' runs served ahead of FastAPI: `AgentLane`, an ASGI middleware.

POST /runs from enrolled agents is most of a collector's work (a ~50 KB run parsed and judged,
where a heartbeat is a few hundred bytes), and FastAPI's part of each such request — its
middleware, the router's matching through the included routers, solving the route's
dependencies — was ~0.25 ms of the ~1.7 ms the event loop spends on one (`bench/request_cpu.py`;
docs/benchmarks.md, collector ingest, tenth round). The lane answers exactly `POST /api/v1/runs`
with a host credential (`Authorization: Bearer xjh_…`, read as FastAPI's `HTTPBearer` reads it)
by calling `runs.post_agent_run` itself; every other request, API keys' runs included, goes on
to FastAPI, whose POST /runs route stays the operation's OpenAPI entry. It sits inside
`BodyLimit`, so the body is limited and inflated as for every route, and its errors are
answered by the app's own exception handlers: the same JSON, status and `/metrics` count as
anywhere else. What no handler takes goes on to the server-error handler, as from a route.
Sample batches stay with FastAPI: a quarter as many requests in the bench, ~0.1 ms each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Callable, Optional

from fastapi import Request, Response
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api import API_PREFIX
from collector.api.runs import post_agent_run
from collector.auth import HOST_PREFIX

Handler = Callable[[Request, Exception], Awaitable[Response]]


class AgentLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.path = API_PREFIX + "/runs"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secret = self._host_secret(scope)
        if secret is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await post_agent_run(request, secret)
        except Exception as exc:
            handler = handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _host_secret(self, scope: Scope) -> Optional[str]:
        """The host credential of an agent's POST /runs; None for any other request."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        if scope["path"] not in (self.path, scope.get("root_path", "") + self.path):
            return None  # the path as Starlette's routing reads it, behind a root path too
        scheme, secret = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
        if scheme.lower() != "bearer" or not secret.startswith(HOST_PREFIX):
            return None
        return secret


def handler_for(handlers: Mapping[Any, Handler], exc: Exception) -> Optional[Handler]:
    """The handler Starlette's exception middleware would pick for `exc` (by its class, nearest
    first), short of the catch-all for `Exception`, which the server-error middleware runs."""
    for cls in type(exc).__mro__:
        if cls is not Exception and cls in handlers:
            return handlers[cls]
    return None
