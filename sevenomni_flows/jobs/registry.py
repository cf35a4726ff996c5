"""The property registry: every property Maker, by the spec section it reads.

A Maker class that sets ``stage`` registers itself when its module is
imported (see :class:`~sevenomni_flows.jobs.calculation.PropertyMaker`).
Everything that lists properties reads this registry: the spec's sections
and ``properties:`` choices, the screening flow, the summary columns and
units (from the Makers' documents) and the data-store routing.  Adding a
property is one new module in :mod:`sevenomni_flows.properties`.

Stages:

- ``material``: computed on each relaxed material of a screening
  (``properties:`` in a spec; ``relax`` runs first);
- ``framework``: on each MOF of ``frameworks:`` (``framework_properties:``);
- ``band``: on the NEB bands of ``bands:``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["STAGES", "documents", "makers", "register"]

STAGES = ("material", "framework", "band")

_MAKERS: dict[str, Any] = {}


def register(cls: Any) -> None:
    """Add a Maker class under its spec section (its property by default)."""
    if cls.stage not in STAGES:
        raise ValueError(f"{cls.__name__}.stage must be one of {STAGES}")
    if not cls.property:
        raise ValueError(f"{cls.__name__} registers without a property")
    name = cls.section or cls.property
    old = _MAKERS.get(name)
    if old is not None and old.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"spec section {name!r} is taken by {old.__name__}; "
            f"give {cls.__name__} its own 'section'"
        )
    _MAKERS[name] = cls


def makers(stage: str | None = None) -> dict[str, Any]:
    """Registered Maker classes by spec section, in registration order."""
    importlib.import_module("sevenomni_flows.properties")  # every Maker registers
    return {
        name: cls
        for name, cls in _MAKERS.items()
        if stage is None or cls.stage == stage
    }


def documents() -> dict[str, type]:
    """The document class of each property (one per property)."""
    return {cls.property: cls.document for cls in makers().values()}
