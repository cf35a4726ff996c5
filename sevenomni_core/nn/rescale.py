"""Per-atom energy scale and shift: by species, and optionally by task."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Rescale"]


class Rescale(nn.Module):
    """``E_i = scale * e_i + shift`` with species- and task-resolved tables.

    Each of ``shift`` and ``scale`` is a tensor of shape ``(1,)`` (one value),
    ``(S,)`` (per species) or ``(T, S)`` (per task and species).

    Parameters
    ----------
    shift, scale : torch.Tensor
        The tables, in eV.
    trainable : bool
        Whether they are trained.
    """

    def __init__(
        self, shift: torch.Tensor, scale: torch.Tensor, trainable: bool = False
    ):
        super().__init__()
        self.shift = nn.Parameter(
            torch.as_tensor(shift, dtype=torch.float32).clone(), requires_grad=trainable
        )
        self.scale = nn.Parameter(
            torch.as_tensor(scale, dtype=torch.float32).clone(), requires_grad=trainable
        )

    @staticmethod
    def _lookup(table: torch.Tensor, species: torch.Tensor, task: torch.Tensor):
        if table.dim() == 2:
            return table[task, species]
        if table.numel() == 1:
            return table.expand(species.shape[0])
        return table[species]

    def forward(
        self, energy: torch.Tensor, species: torch.Tensor, task: torch.Tensor
    ) -> torch.Tensor:
        """Rescale per-atom energies ``(N,)`` given species and task per atom."""
        return energy * self._lookup(self.scale, species, task) + self._lookup(
            self.shift, species, task
        )
