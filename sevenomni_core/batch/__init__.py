"""Many structures per forward pass: batched prediction, relaxation,
molecular dynamics and nudged elastic bands."""

from .md import MDResult, md
from .neb import NebResult, neb
from .optimizers import OPTIMIZERS, FireParameters
from .predict import Prediction, predict
from .relax import RelaxResult, relax

__all__ = [
    "OPTIMIZERS",
    "FireParameters",
    "MDResult",
    "NebResult",
    "Prediction",
    "RelaxResult",
    "md",
    "neb",
    "predict",
    "relax",
]
