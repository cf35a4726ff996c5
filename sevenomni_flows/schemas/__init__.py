"""Pydantic documents with units and provenance."""

from .documents import (
    AdsorptionDocument,
    ElasticDocument,
    EosDocument,
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
    "PhononDocument",
    "Provenance",
    "RelaxDocument",
    "ResultDocument",
    "SlabConvergenceDocument",
    "StaticDocument",
    "WidomDocument",
    "structure_id",
]
