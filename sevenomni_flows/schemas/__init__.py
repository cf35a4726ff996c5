"""Pydantic documents with units and provenance."""

from .documents import (
    ElasticDocument,
    EosDocument,
    PhononDocument,
    RelaxDocument,
    ResultDocument,
    StaticDocument,
)
from .provenance import Provenance, structure_id

__all__ = [
    "ElasticDocument",
    "EosDocument",
    "PhononDocument",
    "Provenance",
    "RelaxDocument",
    "ResultDocument",
    "StaticDocument",
    "structure_id",
]
