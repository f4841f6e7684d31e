"""Request bodies parsed straight from the JSON bytes, strictly.

FastAPI's own body handling decodes JSON into Python objects and then validates them in lax
mode, where `true` passes for the number 1 and "5" for 5. Wire messages are validated here
with `model_validate_json(strict=True)` instead: nothing is coerced (timestamps and UUIDs
still come as JSON strings), and it skips a decoding pass on the hot path. The wire models'
own types (`checks.bounds`) refuse, in that same pass, what no column could store: those
values get a 422 naming the field too, and never reach the database.
The models still appear in the OpenAPI document through `documented(...)` + `add_components`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
GZIP_BODY = "xunjian.gzip_body"
"""Scope key under which `BodyLimit` keeps a gzip body's own bytes, chunk by chunk: a run posted
gzip is stored in the compression it came in, not compressed again (~0.25 ms a 50 KB run)."""
_REF = "#/components/schemas/{model}"
_MODELS: dict[str, type[BaseModel]] = {}


@dataclass(frozen=True)
class JsonText:
    """A request's JSON body as text, not yet validated: `text` the (inflated) bytes, `gzip`
    the same bytes as they were posted gzipped, when they were."""

    text: bytes
    gzip: Optional[bytes]


async def json_text(request: Request) -> JsonText:
    raw = await request.body()
    posted: Optional[list[bytes]] = request.scope.get(GZIP_BODY)
    if b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL: keep the run, mark the spot
        raw = raw.replace(b"\\u0000", b"\\ufffd")
        posted = None  # no longer what was posted
    return JsonText(raw, b"".join(posted) if posted else None)


def validated(model: type[M], raw: bytes) -> M:
    """`raw` as `model`, strictly; a 422 naming each field path in the body otherwise."""
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**err, "loc": ("body", *err["loc"])}
                for err in exc.errors(include_url=False, include_input=False)
            ]
        ) from exc


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    async def parse(request: Request) -> M:
        return validated(model, (await json_text(request)).text)

    return parse


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
