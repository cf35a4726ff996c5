"""Pydantic documents with units and provenance."""

from .documents import (
    AdsorptionDocument,
    ElasticDocument,
    EosDocument,
    MDDocument,
    NebDocument,
    PhononDocument,
    RelaxDocument,
    ResultDocument,
    SlabConvergenceDocument,
    StaticDocument,
    WidomDocument,
)
from .provenance import Provenance, structure_id

__all__ = [
    "AdsorptionDocument",
    "ElasticDocument",
    "EosDocument",
    "MDDocument",
    "NebDocument",
    "PhononDocument",
    "Provenance",
    "RelaxDocument",
    "ResultDocument",
    "SlabConvergenceDocument",
    "StaticDocument",
    "WidomDocument",
    "structure_id",
]
