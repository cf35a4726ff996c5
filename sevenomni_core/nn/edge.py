"""Edge embedding: radial basis times envelope, and spherical harmonics."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

__all__ = ["EdgeEmbedding"]


class EdgeEmbedding(nn.Module):
    """Embed edge vectors into radial features and spherical harmonics.

    Parameters
    ----------
    basis_function : nn.Module
        Radial basis, lengths ``(E,)`` to ``(E, num_basis)``.
    cutoff_function : nn.Module
        Envelope, lengths ``(E,)`` to ``(E,)``.
    lmax : int
        Largest angular momentum of the spherical harmonics.
    parity : bool
        If true the harmonics carry parity ``(-1)^l`` (O(3)); else all even
        (SO(3)).
    normalize : bool
        Whether the vectors are normalised before the harmonics are taken
        (old checkpoints used unnormalised vectors).
    """

    def __init__(
        self,
        basis_function: nn.Module,
        cutoff_function: nn.Module,
        lmax: int,
        parity: bool,
        normalize: bool = True,
    ):
        super().__init__()
        self.basis_function = basis_function
        self.cutoff_function = cutoff_function
        p = -1 if parity else 1
        self.irreps_out = o3.Irreps.spherical_harmonics(lmax, p)
        self.spherical = o3.SphericalHarmonics(
            self.irreps_out,
            normalize=normalize,
            normalization="component",
            irreps_in=o3.Irreps("1x1o" if parity else "1x1e"),
        )
        self.num_basis = basis_function.num_basis

    def forward(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return radial features ``(E, num_basis)`` and harmonics ``(E, dim)``."""
        r = torch.linalg.norm(vectors, dim=-1)
        radial = self.basis_function(r) * self.cutoff_function(r).unsqueeze(-1)
        return radial, self.spherical(vectors)
