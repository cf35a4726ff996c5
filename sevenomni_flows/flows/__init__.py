"""Flow Makers."""

from .screening import PROPERTIES, ScreeningMaker

__all__ = ["PROPERTIES", "ScreeningMaker"]
