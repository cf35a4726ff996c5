"""Job Makers: one per calculation, parameterised by model and task."""

from .base import ModelSettings
from .elastic import ElasticMaker
from .eos import EosMaker
from .phonon import PhononMaker
from .relax import RelaxMaker, StaticMaker

__all__ = [
    "ElasticMaker",
    "EosMaker",
    "ModelSettings",
    "PhononMaker",
    "RelaxMaker",
    "StaticMaker",
]
