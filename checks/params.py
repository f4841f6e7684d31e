"""Threshold layering with provenance: defaults → profile → config/contract → host → item.

Every check declares a pydantic model of its parameters with defaults. Overrides come in layers,
each a mapping `check id → {field: value, "items": {item: {field: value}}}`; later layers win,
and within a layer an item's own values win over the check's. Each resolved field remembers the
layer that set it, so a report can say where a threshold came from.
"""

from __future__ import annotations

from typing import Any, Dict, Generic, List, Mapping, Optional, Tuple, Type, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

P = TypeVar("P", bound=BaseModel)

ITEMS_KEY = "items"


class Layer(BaseModel):
    """One source of overrides, e.g. name='contract:HT-2026-001'."""

    model_config = ConfigDict(extra="forbid")

    name: str
    checks: Dict[str, Dict[str, Any]] = Field(default_factory=dict)


class Resolved(Generic[P]):
    def __init__(self, params: P, provenance: Dict[str, str], rank: Dict[str, int]) -> None:
        self.params = params
        self.provenance = provenance
        self._rank = rank

    def source_of(self, *fields: str) -> str:
        """The most specific provenance among `fields`: a host's warning over a contract's
        critical is reported as the host's, whatever order the fields are named in."""
        touched = [f for f in fields if f in self.provenance]
        if not touched:
            return "default"
        return self.provenance[max(touched, key=lambda f: self._rank[f])]


class ParamsError(ValueError):
    """An override that does not fit the check's parameter model; names the layer and field path."""


class Resolver:
    """Resolves each (check, item) once: a resolver serves every run of a host (the collector
    keeps one per contract version and host selector), and building the parameter models
    again for every run was a tenth of judging one."""

    def __init__(self, layers: Optional[List[Layer]] = None) -> None:
        self.layers = list(layers or [])
        self._memo: Dict[Tuple[str, Optional[str], Type[BaseModel]], Resolved[Any]] = {}

    def with_layer(self, layer: Layer) -> "Resolver":
        return Resolver([*self.layers, layer])

    def resolve(self, check_id: str, model: Type[P], item: Optional[str] = None) -> Resolved[P]:
        key = (check_id, item, model)
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = self._resolve(check_id, model, item)
        return known

    def _resolve(self, check_id: str, model: Type[P], item: Optional[str]) -> Resolved[P]:
        values: Dict[str, Any] = {}
        provenance: Dict[str, str] = {}
        rank: Dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            entry = layer.checks.get(check_id)
            if not entry:
                continue
            for key, value in _own_values(entry).items():
                values[key] = value
                provenance[key] = layer.name
                rank[key] = 2 * index
            if item is not None:
                item_entry = (entry.get(ITEMS_KEY) or {}).get(item)
                for key, value in (item_entry or {}).items():
                    values[key] = value
                    provenance[key] = f"{layer.name}[{item}]"
                    rank[key] = 2 * index + 1
        try:
            params = model(**values)
        except ValidationError as exc:
            raise ParamsError(_describe(check_id, item, exc, provenance)) from exc
        return Resolved(params, provenance, rank)

    def validate(self, models: Mapping[str, Type[BaseModel]]) -> List[str]:
        """Every problem in every layer: unknown check ids, values that do not fit their model."""
        problems: List[str] = []
        for layer in self.layers:
            for check_id, entry in layer.checks.items():
                model = models.get(check_id)
                if model is None:
                    problems.append(f"{layer.name}: thresholds.{check_id}: unknown check id")
                    continue
                items = [None, *((entry.get(ITEMS_KEY) or {}).keys())]
                for item in items:
                    try:
                        Resolver([layer]).resolve(check_id, model, item)
                    except ParamsError as exc:
                        problems.append(f"{layer.name}: {exc}")
        return problems


def _own_values(entry: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in entry.items() if k != ITEMS_KEY}


def _describe(
    check_id: str, item: Optional[str], exc: ValidationError, prov: Dict[str, str]
) -> str:
    parts: List[str] = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        where = f"thresholds.{check_id}" + (f".items.{item}" if item else "") + f".{loc}"
        parts.append(f"{where} (from {prov.get(loc, 'default')}): {err['msg']}")
    return "; ".join(parts)
