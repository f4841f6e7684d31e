"""The collector's HTTP API: one router per resource, each mounted under /api/v1 by the app.

Each router is included in the app directly and the agents' (runs, samples, heartbeats) come
first: FastAPI matches a request against included routers one level at a time, and a router
of routers cost POST /samples ~35 µs of its ~250 µs on the event loop (`bench/request_cpu.py`;
docs/benchmarks.md, collector ingest, eighth round)."""

from __future__ import annotations

from fastapi import APIRouter

from collector.api import agents, alerts, contracts, enroll, findings, hosts, reports, runs

API_PREFIX = "/api/v1"

ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router for module in (runs, agents, enroll, hosts, findings, contracts, alerts, reports)
)
