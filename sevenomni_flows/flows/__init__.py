"""Flow Makers."""

from .screening import ScreeningMaker, properties

__all__ = ["ScreeningMaker", "properties"]
