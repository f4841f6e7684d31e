"""The collector's HTTP API: one router per resource, all mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from collector.api import agents, alerts, contracts, enroll, findings, hosts, reports, runs

API_PREFIX = "/api/v1"

router = APIRouter(prefix=API_PREFIX)
for module in (enroll, runs, agents, hosts, findings, contracts, alerts, reports):
    router.include_router(module.router)
