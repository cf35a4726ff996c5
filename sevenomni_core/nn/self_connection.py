"""Self-connections: the residual path around each interaction block."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from .linear import IrrepsLinear
from .tensor_product import coupling

__all__ = ["LinearSelfConnection", "SpeciesSelfConnection"]


class LinearSelfConnection(IrrepsLinear):
    """``x -> W x`` (SevenNet's ``linear`` self-connection)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps):
        super().__init__(irreps_in, irreps_out)

    def forward(
        self, x: torch.Tensor, species: torch.Tensor, reference: bool = False
    ) -> torch.Tensor:
        """Apply the map; ``species`` is unused (same call as the other kind)."""
        return self.linear(x) if reference else super().forward(x)


class SpeciesSelfConnection(nn.Module):
    """``x -> W[z] x``: NequIP's tensor product of ``x`` with the species one-hot.

    The weights are those of an :class:`e3nn.o3.FullyConnectedTensorProduct`
    of ``irreps_in x (S x 0e)``; the forward pass looks up the weight slice
    of each species instead of forming the product with the one-hot.
    """

    def __init__(self, irreps_in: o3.Irreps, num_species: int, irreps_out: o3.Irreps):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.num_species = num_species
        self.fc_tensor_product = o3.FullyConnectedTensorProduct(
            self.irreps_in,
            o3.Irreps(f"{num_species}x0e"),
            self.irreps_out,
            shared_weights=True,
            internal_weights=True,
        )
        self._plan = []
        offset = 0
        for ins in self.fc_tensor_product.instructions:
            mul_in, _, mul_out = ins.path_shape
            l1 = self.irreps_in[ins.i_in1].ir.l
            l3 = self.irreps_out[ins.i_out].ir.l
            scale = float(coupling(l1, 0, l3)[0, 0, 0]) * ins.path_weight
            self._plan.append((ins.i_in1, ins.i_out, offset, mul_in, mul_out, scale))
            offset += mul_in * num_species * mul_out
        self._splits = [m.dim for m in self.irreps_in]

    def forward(
        self, x: torch.Tensor, species: torch.Tensor, reference: bool = False
    ) -> torch.Tensor:
        """Apply the map to features ``(N, in)`` of atoms of species ``(N,)``."""
        if reference:
            onehot = nn.functional.one_hot(species, self.num_species).to(x.dtype)
            return self.fc_tensor_product(x, onehot)
        n = x.shape[0]
        weight = self.fc_tensor_product.weight
        blocks = [
            b.reshape(n, m.mul, m.ir.dim)
            for b, m in zip(
                torch.split(x, self._splits, dim=1), self.irreps_in, strict=True
            )
        ]
        present = torch.unique(species)
        masks = [species == s for s in present]
        outs: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        for i_in, i_out, off, mul_in, mul_out, scale in self._plan:
            w = weight[off : off + mul_in * self.num_species * mul_out]
            w = w.view(mul_in, self.num_species, mul_out)
            xb = blocks[i_in]
            y = xb.new_zeros(n, mul_out, xb.shape[-1])
            for s, mask in zip(present, masks, strict=True):
                ys = torch.einsum("nud,uw->nwd", xb[mask], w[:, s] * scale)
                y = y.index_put((mask,), ys)
            prev = outs[i_out]
            outs[i_out] = y if prev is None else prev + y
        flat = [
            (o.reshape(n, m.dim) if o is not None else x.new_zeros(n, m.dim))
            for o, m in zip(outs, self.irreps_out, strict=True)
        ]
        return torch.cat(flat, dim=1)
