"""Many structures per forward pass: batched prediction and relaxation."""

from .optimizers import OPTIMIZERS, FireParameters
from .predict import Prediction, predict
from .relax import RelaxResult, relax

__all__ = [
    "OPTIMIZERS",
    "FireParameters",
    "Prediction",
    "RelaxResult",
    "predict",
    "relax",
]
