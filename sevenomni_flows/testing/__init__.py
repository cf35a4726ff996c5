"""Reusable checks of the property Makers: representation invariance.

>>> from sevenomni_flows.testing import ENTRIES, check
"""

from .entries import CHEAP, ENTRIES
from .invariance import Entry, Field, Report, check, compare
from .representations import REPRESENTATIONS, Representation, representations

__all__ = [
    "CHEAP",
    "ENTRIES",
    "REPRESENTATIONS",
    "Entry",
    "Field",
    "Report",
    "Representation",
    "check",
    "compare",
    "representations",
]
