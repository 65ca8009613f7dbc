"""What a pydantic model says about the YAML keys it validates.

Field names as written in YAML (aliases where set), the model that validates the mapping at a
data path, and the enum members a field accepts: what error messages need to suggest a fix,
and what the risk check needs to try every value a templated enum param could render to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from bot.runbooks.yaml_positions import DataPath


def fields_of(model: type[BaseModel] | None, *, required: bool = False) -> list[str]:
    """Field names as written in YAML (aliases where set), in declaration order."""
    if model is None:
        return []
    return [
        info.alias or name
        for name, info in model.model_fields.items()
        if info.is_required() or not required
    ]


def field_name(model: type[BaseModel], key: str) -> str | None:
    """The attribute name of the field written as ``key`` (its name or alias), if any."""
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name
    return None


def model_at(model: type[BaseModel], loc: DataPath) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (relative to ``model``), if any."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            name = field_name(current, str(part))
            if name is None:
                return None
            current = current.model_fields[name].annotation
        elif get_origin(current) in (list, tuple, Sequence, dict, Mapping):
            current = get_args(current)[-1] if get_args(current) else Any
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def enum_members(annotation: Any) -> list[Enum]:
    """Every member, when the annotation is an enum (or an optional one); else empty."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return list(annotation)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that validates the value."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
