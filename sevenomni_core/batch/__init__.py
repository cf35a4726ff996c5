"""Many structures per forward pass: batched prediction and relaxation."""

from .predict import Prediction, predict
from .relax import FireParameters, RelaxResult, relax

__all__ = ["FireParameters", "Prediction", "RelaxResult", "predict", "relax"]
