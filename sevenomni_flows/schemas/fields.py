"""Field metadata of result documents: units and bulky fields, said once.

A document field made with :func:`quantity` carries its unit (and shows it
in its description); one made with :func:`bulky` is kept in the JobStore's
``data`` store, not in the results store.  The summary tables, the query
field list and the store routing read these, so a unit or a bulky field is
written in one place: its document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["bulky", "bulky_fields", "document_classes", "quantity", "unit_of"]


def quantity(description: str, unit: str, default: Any = None, **kwargs) -> Any:
    """A document field with a unit: ``description, unit``."""
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return Field(
        description=f"{description}, {unit}",
        json_schema_extra={"unit": unit},
        **kwargs,
    )


def bulky(description: str, **kwargs) -> Any:
    """A bulky document field, kept in the data store (default None)."""
    return Field(
        None,
        description=f"{description} (data store)",
        json_schema_extra={"bulky": True},
        **kwargs,
    )


def _extra(cls: type[BaseModel], name: str) -> dict:
    extra = cls.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def unit_of(cls: type[BaseModel], name: str) -> str | None:
    """The unit of field ``name`` of document class ``cls`` (None if none)."""
    if name not in cls.model_fields:
        return None
    return _extra(cls, name).get("unit")


def document_classes() -> list[type[BaseModel]]:
    """Every result document class defined so far (subclasses, recursively)."""
    from .documents import ResultDocument

    found, todo = [], [ResultDocument]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def bulky_fields(classes: list[type[BaseModel]] | None = None) -> tuple[str, ...]:
    """The names of bulky fields of document classes (default: all), sorted."""
    if classes is None:
        classes = document_classes()
    return tuple(
        sorted(
            {
                name
                for cls in classes
                for name in cls.model_fields
                if _extra(cls, name).get("bulky")
            }
        )
    )
