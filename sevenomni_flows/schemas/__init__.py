"""Pydantic documents with units and provenance: the shared base
(:class:`ResultDocument`), unit-carrying fields and provenance.  Each
property's own document lives in its module of
:mod:`sevenomni_flows.properties`."""

from .documents import ResultDocument, failure_type
from .fields import bulky, bulky_fields, document_classes, quantity, unit_of
from .provenance import Provenance, structure_id

__all__ = [
    "Provenance",
    "ResultDocument",
    "bulky",
    "bulky_fields",
    "document_classes",
    "failure_type",
    "quantity",
    "structure_id",
    "unit_of",
]
