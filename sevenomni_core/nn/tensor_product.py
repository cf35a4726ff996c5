"""Tensor-product kernels that reuse e3nn's weight layout and normalisation.

Both kernels read the instructions, path weights and parameters of an e3nn
module and compute the same map with fewer, larger operations: inputs are
split once, outer products are shared between paths with the same inputs,
and the Clebsch-Gordan contraction of all paths of one input pair is one
matrix product.  They are checked against e3nn's forward in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt

import torch
from e3nn import o3

__all__ = ["UVUKernel", "coupling"]


def coupling(l1: int, l2: int, l3: int) -> torch.Tensor:
    """The coupling tensor e3nn applies for one path, shape (2l1+1, 2l2+1, 2l3+1).

    e3nn's generated code uses ``delta / sqrt(dim)`` whenever one of the
    three irreps is a scalar, and the Wigner 3j symbol otherwise.
    """
    if l1 == 0 or l2 == 0 or l3 == 0:
        d1, d2, d3 = 2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1
        c = torch.zeros(d1, d2, d3, dtype=torch.float64)
        if l1 == 0:
            c[0] = torch.eye(d2, d3, dtype=torch.float64) / sqrt(d3)
        elif l2 == 0:
            c[:, 0] = torch.eye(d1, d3, dtype=torch.float64) / sqrt(d3)
        else:
            c[:, :, 0] = torch.eye(d1, d2, dtype=torch.float64) / sqrt(d1)
        return c
    return o3.wigner_3j(l1, l2, l3, dtype=torch.float64)


class UVUKernel(torch.nn.Module):
    """The ``uvu`` tensor product of a :class:`e3nn.o3.TensorProduct`.

    The second input has multiplicity one per irrep (spherical harmonics) and
    the weights are given per row (per edge), as in a NequIP convolution.
    For each pair of input irreps, the harmonics are first contracted with the
    coupling tensors of all its paths, ``T[e] = Y[e] . C``, and the features
    then multiplied by ``T[e]`` in one batched product.

    Parameters
    ----------
    tp : e3nn.o3.TensorProduct
        The e3nn module whose map is reproduced (it is not registered here).
    """

    def __init__(self, tp: o3.TensorProduct):
        super().__init__()
        self.irreps_in1 = tp.irreps_in1
        self.irreps_in2 = tp.irreps_in2
        self.irreps_out = tp.irreps_out
        if any(mul != 1 for mul, _ in self.irreps_in2):
            raise ValueError("UVUKernel needs multiplicity 1 in the second input")
        groups: dict[tuple[int, int], list] = {}
        self.path_sizes = []
        for p, ins in enumerate(tp.instructions):
            if ins.connection_mode != "uvu" or not ins.has_weight:
                raise ValueError("UVUKernel supports weighted 'uvu' paths only")
            groups.setdefault((ins.i_in1, ins.i_in2), []).append(
                (ins.i_out, p, ins.path_weight)
            )
            self.path_sizes.append(self.irreps_in1[ins.i_in1].mul)
        self.weight_numel = sum(self.path_sizes)
        self._groups = []
        for idx, ((i1, i2), paths) in enumerate(groups.items()):
            l1 = self.irreps_in1[i1].ir.l
            l2 = self.irreps_in2[i2].ir.l
            mats = [
                coupling(l1, l2, self.irreps_out[i_out].ir.l) * pw
                for i_out, _, pw in paths
            ]
            # stored as (d2, d1 * sum d3): contracted with the harmonics first
            cg = torch.cat(mats, dim=2).permute(1, 0, 2)
            # kept in float64: the module's dtype then sets the precision
            # (a float32 copy moved to float64 would stay rounded)
            self.register_buffer(
                f"_cg{idx}", cg.reshape(cg.shape[0], -1), persistent=False
            )
            # and per path, (d2, d1 * d3), for grouped_blocks: each path's
            # coupled harmonics then come out contiguous
            for (_, p, _), mat in zip(paths, mats, strict=True):
                per_path = mat.permute(1, 0, 2).reshape(mat.shape[1], -1)
                self.register_buffer(f"_cgp{p}", per_path, persistent=False)
            dims = [2 * self.irreps_out[i_out].ir.l + 1 for i_out, _, _ in paths]
            outs = [i_out for i_out, _, _ in paths]
            index = [p for _, p, _ in paths]
            self._groups.append((i1, i2, outs, index, dims))
        self._splits1 = [m.dim for m in self.irreps_in1]
        self._splits2 = [m.dim for m in self.irreps_in2]
        # (mul, 2l+1) of each irrep as plain ints: the forward reads no
        # Irreps (torch.compile cannot guard on them)
        self._shapes1 = [(m.mul, m.ir.dim) for m in self.irreps_in1]
        self.out_dims = [m.dim for m in self.irreps_out]

    def _coupled(self, idx: int, x2: torch.Tensor, d1: int, dtype) -> torch.Tensor:
        """``T[e, i, k] = sum_j Y[e, j] C[i, j, k]`` for all paths of one pair."""
        cg = getattr(self, f"_cg{idx}").to(dtype)
        return torch.mm(x2, cg).view(x2.shape[0], d1, cg.shape[1] // d1)

    def blocks(
        self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor
    ) -> list[torch.Tensor | None]:
        """The product as one ``(E, mul, 2l+1)`` block per output irrep.

        Blocks no path reaches are None.
        """
        e = x1.shape[0]
        b1 = [
            b.reshape(e, mul, dim)
            for b, (mul, dim) in zip(
                torch.split(x1, self._splits1, dim=1), self._shapes1, strict=True
            )
        ]
        b2 = torch.split(x2, self._splits2, dim=1)
        wpaths = torch.split(weight, self.path_sizes, dim=1)
        outs: list[torch.Tensor | None] = [None] * len(self.out_dims)
        for idx, (i1, i2, out_index, path_index, dims) in enumerate(self._groups):
            a = b1[i1]
            d1 = a.shape[2]
            ts = torch.split(self._coupled(idx, b2[i2], d1, x1.dtype), dims, dim=2)
            for i_out, p, tp in zip(out_index, path_index, ts, strict=True):
                # weight the (smaller) input, then one product per path
                if d1 == 1:
                    part = (a.squeeze(-1) * wpaths[p]).unsqueeze(-1) * tp
                else:
                    part = torch.bmm(a * wpaths[p].unsqueeze(-1), tp)
                prev = outs[i_out]
                outs[i_out] = part if prev is None else prev + part
        return outs

    def grouped_blocks(
        self,
        x1: torch.Tensor,
        senders: Sequence[torch.Tensor],
        x2: Sequence[torch.Tensor],
        weights: Sequence[Sequence[torch.Tensor]],
        buckets: tuple[tuple[int, int], ...],
    ) -> list[torch.Tensor | None]:
        """The product summed over each node's edges, ``(N, mul, 2l+1)`` per irrep.

        Edges come in slots grouped by receiver, one entry per bucket of
        ``buckets`` (``(nodes, slots per node)`` each, see
        :class:`~sevenomni_core.nn.convolution.ReceiverSlots`): ``senders[b]``
        the node of each slot, ``x2[b]`` its harmonics (zero in padded slots)
        and ``weights[b][p]`` the weights ``(slots, mul)`` of path ``p``;
        ``x1`` holds the node features.  The sum over slots and the
        Clebsch-Gordan contraction are one batched matrix product per path
        and bucket, so no per-edge output is formed.  Every large operand is
        made per bucket and per path (no split of a large tensor, whose
        gradient would be a full copy), and the features are gathered as
        ``(slot, 2l+1, mul)`` so that each node's slots and components are
        contiguous.
        """
        n = x1.shape[0]
        nodes_t = [
            b.reshape(n, mul, dim).transpose(1, 2).contiguous()
            for b, (mul, dim) in zip(
                torch.split(x1, self._splits1, dim=1), self._shapes1, strict=True
            )
        ]
        per_bucket: list[list[torch.Tensor]] = [[] for _ in self.out_dims]
        for (nodes, degree), send, sh, w in zip(
            buckets, senders, x2, weights, strict=True
        ):
            outs: list[torch.Tensor | None] = [None] * len(self.out_dims)
            b1 = [t[send] for t in nodes_t]  # (S, d1, mul)
            b2 = torch.split(sh, self._splits2, dim=1)
            for i1, i2, out_index, path_index, _ in self._groups:
                a = b1[i1]
                d1 = a.shape[1]
                for i_out, p in zip(out_index, path_index, strict=True):
                    # T[s, i, k] = sum_j Y[s, j] C[i, j, k], contiguous
                    t = torch.mm(b2[i2], getattr(self, f"_cgp{p}").to(x1.dtype))
                    aw = a * w[p].unsqueeze(1)
                    part = torch.bmm(
                        t.view(nodes, degree * d1, -1).transpose(1, 2),
                        aw.view(nodes, degree * d1, -1),
                    )
                    prev = outs[i_out]
                    outs[i_out] = part if prev is None else prev + part
            for parts, out in zip(per_bucket, outs, strict=True):
                if out is not None:
                    parts.append(out)
        return [
            None
            if not parts
            else (parts[0] if len(parts) == 1 else torch.cat(parts)).transpose(1, 2)
            for parts in per_bucket
        ]

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """``x1 (E, in1) x x2 (E, in2)`` with per-row weights ``(E, numel)``."""
        e = x1.shape[0]
        flat = [
            (o.reshape(e, dim) if o is not None else x1.new_zeros(e, dim))
            for o, dim in zip(self.blocks(x1, x2, weight), self.out_dims, strict=True)
        ]
        return torch.cat(flat, dim=1)
