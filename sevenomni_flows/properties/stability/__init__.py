"""Thermodynamic stability: energy above the convex hull, with elemental
references (:mod:`.elements`) computed with the same model."""

from .maker import StabilityMaker

__all__ = ["StabilityMaker"]
