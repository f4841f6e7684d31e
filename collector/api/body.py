"""Request bodies parsed straight from the JSON bytes, strictly.

FastAPI's own body handling decodes JSON into Python objects and then validates them in lax
mode, where `true` passes for the number 1 and "5" for 5. Wire messages are validated here
with `model_validate_json(strict=True)` instead: nothing is coerced (timestamps and UUIDs
still come as JSON strings), and it skips a decoding pass on the hot path. Values the models
accept but no column can store are refused with 422 too, never left to fail in the database.
The models still appear in the OpenAPI document through `documented(...)` + `add_components`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
INT64 = 2**63
# Everything `_storable` refuses shows in the JSON text as one of: 19+ digits, a huge exponent,
# NaN/Infinity, a time without offset (or a bare date), a year at the calendar's edge. One regex
# with those alternatives costs ~2 ms on a 50 KB run (no literal to skip ahead on); folding
# digits to 0, E to e and - to + first turns each into a plain substring search (~0.1 ms).
_FOLD = bytes.maketrans(b"123456789E-", b"000000000e+")
_NAIVE_TIME = re.compile(rb'"0000\+00\+00(?:[Tt _][0:.]+)?"')
_ZERO = ord("0")
_NUMBER_END = frozenset(b",}] \t\r\n")
_REF = "#/components/schemas/{model}"
_MODELS: dict[str, type[BaseModel]] = {}


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    async def parse(request: Request) -> M:
        raw = await request.body()
        if b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL: keep the run, mark the spot
            raw = raw.replace(b"\\u0000", b"\\ufffd")
        try:
            parsed = model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    {**err, "loc": ("body", *err["loc"])}
                    for err in exc.errors(include_url=False, include_input=False)
                ]
            ) from exc
        if _suspect(raw):  # the exact walk costs ~1 ms on a 50 KB run: only on suspicion
            problems: list[dict[str, Any]] = []
            _storable(parsed, ("body",), problems)
            if problems:
                raise RequestValidationError(problems)
        request.state.json_text = raw  # the text `parsed` came from, for endpoints that keep it
        return parsed

    return parse


def _suspect(raw: bytes) -> bool:
    """Whether the text may hold a value `_storable` refuses (false alarms only cost time)."""
    if b"NaN" in raw or b"Infinity" in raw or b'"0001-' in raw or b'"9999-' in raw:
        return True
    folded = raw.translate(_FOLD)
    return b"0" * 19 in folded or _huge_exponent(folded) or _NAIVE_TIME.search(folded) is not None


def _huge_exponent(folded: bytes) -> bool:
    """A number with an exponent of three digits or more (it may overflow to infinity). Only
    where the exponent ends the number: hex strings (UUIDs, digests) are full of `e` followed
    by digits, and as a bare substring test they raised the alarm on most runs."""
    for marker in (b"e000", b"e+000"):
        at = folded.find(marker)
        while at != -1:
            end = at + len(marker)
            while end < len(folded) and folded[end] == _ZERO:
                end += 1
            if end == len(folded) or folded[end] in _NUMBER_END:
                return True
            at = folded.find(marker, end)
    return False


def _storable(value: Any, loc: tuple[Any, ...], out: list[dict[str, Any]]) -> None:
    """What the wire models allow but no database column can hold: integers beyond 64 bits,
    NaN and infinities, naive times, times that leave the calendar when turned into UTC."""
    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            _storable(getattr(value, name), (*loc, field.alias or name), out)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(item, (*loc, key), out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _storable(item, (*loc, index), out)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int) and not -INT64 <= value < INT64:
        out.append(_problem(loc, "integer out of the 64-bit range"))
    elif isinstance(value, float) and not math.isfinite(value):
        out.append(_problem(loc, "must be a finite number"))
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            out.append(_problem(loc, "must be timezone-aware (e.g. 2026-11-20T08:00:00+08:00)"))
            return
        try:
            value.astimezone(timezone.utc)
        except OverflowError:
            out.append(_problem(loc, "out of range once converted to UTC"))


def _problem(loc: tuple[Any, ...], msg: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": loc, "msg": msg}


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose body is `model`."""
    _MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
            },
        }
    }


def add_components(app: FastAPI) -> None:
    """Put the body models (and the models they use) into the app's OpenAPI components."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = base()
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _MODELS.items():
            schema = model.model_json_schema(ref_template=_REF)
            for def_name, definition in schema.pop("$defs", {}).items():
                components.setdefault(def_name, definition)
            components.setdefault(name, schema)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
