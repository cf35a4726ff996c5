"""Many structures per forward pass: batched prediction and relaxation."""

from .predict import Prediction, predict

__all__ = ["Prediction", "predict"]
