"""Selective L2 regularisation of the task-specific interaction weights.

SevenNet-Omni penalises only the task rows of the interaction blocks'
self-interaction layers, so each task stays a small correction around one
shared potential-energy surface; the readout's task rows and the task-wise
energy shifts are free.
"""

from __future__ import annotations

import torch

from ..model.network import SevenNet
from .tasks import interaction_task_weights

__all__ = ["selective_l2"]


def selective_l2(model: SevenNet) -> torch.Tensor:
    """``sum w**2`` over the task rows of every ``{t}_self_interaction_{1,2}``.

    Zero (with a gradient path) for models without such rows.
    """
    total = next(model.parameters()).new_zeros(())
    for _, param, rows in interaction_task_weights(model):
        total = total + (param[rows] ** 2).sum()
    return total
