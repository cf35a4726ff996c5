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
    failure_type,
)
from .fields import bulky, bulky_fields, document_classes, quantity, unit_of
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
    "bulky",
    "bulky_fields",
    "document_classes",
    "failure_type",
    "quantity",
    "structure_id",
    "unit_of",
]
