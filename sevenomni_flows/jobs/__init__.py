"""The framework the properties share: model settings, the job boundary
(:mod:`.calculation`), the registry (:mod:`.registry`) and plot helpers.

The properties themselves live in :mod:`sevenomni_flows.properties`, one
module each; importing that package registers every Maker.
"""

from .base import ModelSettings

__all__ = ["ModelSettings"]
