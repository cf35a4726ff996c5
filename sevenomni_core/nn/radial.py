"""Radial basis and cutoff (envelope) functions of edge lengths."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BesselBasis", "PolynomialCutoff", "XPLORCutoff"]


class BesselBasis(nn.Module):
    """``2/r_c * sin(n pi r / r_c) / r`` for ``n = 1..num_basis``.

    Parameters
    ----------
    cutoff : float
        Cutoff radius in Å.
    num_basis : int
        Number of basis functions.
    trainable : bool
        Whether the frequencies ``n pi / r_c`` are parameters (stored in
        checkpoints as ``coeffs``) or fixed.
    """

    def __init__(self, cutoff: float, num_basis: int = 8, trainable: bool = True):
        super().__init__()
        self.num_basis = num_basis
        self.prefactor = 2.0 / cutoff
        coeffs = torch.tensor(
            [n * math.pi / cutoff for n in range(1, num_basis + 1)],
            dtype=torch.float32,
        )
        if trainable:
            self.coeffs = nn.Parameter(coeffs)
        else:
            self.register_buffer("coeffs", coeffs, persistent=False)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Map lengths ``(E,)`` to basis values ``(E, num_basis)``."""
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.coeffs * r) / r


class PolynomialCutoff(nn.Module):
    """The smooth polynomial envelope of DimeNet, of order ``p``."""

    def __init__(self, cutoff: float, p: float = 6):
        super().__init__()
        self.cutoff = cutoff
        self.p = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Envelope values for lengths ``r`` (Å), same shape as ``r``."""
        p = self.p
        x = r / self.cutoff
        return (
            1
            - (p + 1.0) * (p + 2.0) / 2.0 * torch.pow(x, p)
            + p * (p + 2.0) * torch.pow(x, p + 1.0)
            - p * (p + 1.0) / 2.0 * torch.pow(x, p + 2.0)
        )


class XPLORCutoff(nn.Module):
    """The XPLOR switching function: 1 below ``cutoff_on``, 0 at ``cutoff``."""

    def __init__(self, cutoff: float, cutoff_on: float):
        super().__init__()
        if not cutoff_on < cutoff:
            raise ValueError(f"XPLOR cutoff_on ({cutoff_on}) must be < {cutoff}")
        self.r_on = cutoff_on
        self.r_cut = cutoff

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Switching values for lengths ``r`` (Å), same shape as ``r``."""
        r_sq = r * r
        on_sq = self.r_on**2
        cut_sq = self.r_cut**2
        switched = (
            (cut_sq - r_sq) ** 2
            * (cut_sq + 2 * r_sq - 3 * on_sq)
            / (cut_sq - on_sq) ** 3
        )
        return torch.where(r < self.r_on, torch.ones_like(r), switched)
