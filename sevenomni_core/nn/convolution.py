"""The NequIP convolution: radial-weighted tensor products summed over edges."""

from __future__ import annotations

from collections.abc import Callable

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import nn

from .tensor_product import UVUKernel

__all__ = ["Convolution", "convolution_instructions", "receiver_slots"]

#: The grouped form is used while the padded slots are at most this many
#: times the edges (a batch of very uneven neighbour counts stays per edge).
MAX_PADDING = 1.5


def receiver_slots(
    receivers: torch.Tensor, n_nodes: int
) -> tuple[torch.Tensor, int] | None:
    """Edges grouped by receiver into ``degree`` slots per node.

    Returns ``(edge_of_slot (n_nodes * degree,), degree)``, where empty slots
    hold ``E`` (the index of an appended zero row), or None when padding
    would exceed :data:`MAX_PADDING` times the edges (or there are none).
    """
    e = receivers.shape[0]
    if e == 0 or n_nodes == 0:
        return None
    counts = torch.bincount(receivers, minlength=n_nodes)
    degree = int(counts.max())
    if n_nodes * degree > MAX_PADDING * e:
        return None
    order = torch.argsort(receivers, stable=True)
    sorted_receivers = receivers[order]
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(e, device=receivers.device) - starts[sorted_receivers]
    slots = receivers.new_full((n_nodes * degree,), e)
    slots[sorted_receivers * degree + rank] = order
    return slots, degree


def convolution_instructions(
    irreps_x: o3.Irreps, irreps_filter: o3.Irreps, irreps_out: o3.Irreps
) -> tuple[o3.Irreps, list[tuple], list[tuple]]:
    """The ``uvu`` paths of a SevenNet convolution.

    Returns
    -------
    irreps_mid : e3nn.o3.Irreps
        Sorted, unsimplified output irreps (one entry per path).
    instructions : list of tuple
        ``(i_x, i_filter, i_mid, "uvu", True)`` sorted by ``i_mid`` (the order
        used since sevenn 0.11, which fixes the weight layout).
    before_sort : list of tuple
        The same paths in the order of older checkpoints (before 0.11).
    """
    instructions = []
    mid = []
    for i, (mul_x, ir_x) in enumerate(irreps_x):
        for j, (_, ir_f) in enumerate(irreps_filter):
            for ir_out in ir_x * ir_f:
                if ir_out in irreps_out:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul_x, ir_out))
    irreps_mid, perm, _ = o3.Irreps(mid).sort()
    before_sort = [(i, j, perm[k], m, t) for i, j, k, m, t in instructions]
    return irreps_mid, sorted(before_sort, key=lambda x: x[2]), before_sort


class Convolution(nn.Module):
    """Messages ``W(|r_ij|) x_j (x) Y(r_ij)`` summed at ``i``, over a denominator.

    Parameters
    ----------
    irreps_x : e3nn.o3.Irreps
        Node features.
    irreps_filter : e3nn.o3.Irreps
        Spherical harmonics of the edges.
    irreps_out : e3nn.o3.Irreps
        Irreps kept in the product (higher ``l`` are dropped).
    radial_layers : list of int
        Sizes of the radial network, input (number of basis functions) first;
        its output size is appended.
    radial_act : callable
        Activation of the radial network.
    denominator : float
        Messages are divided by this (usually the mean neighbour count).
    train_denominator : bool
        Whether the denominator is a trained parameter.
    """

    def __init__(
        self,
        irreps_x: o3.Irreps,
        irreps_filter: o3.Irreps,
        irreps_out: o3.Irreps,
        radial_layers: list[int],
        radial_act: Callable,
        denominator: float = 1.0,
        train_denominator: bool = False,
    ):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_x)
        irreps_mid, instructions, before = convolution_instructions(
            self.irreps_in, o3.Irreps(irreps_filter), o3.Irreps(irreps_out)
        )
        self.irreps_out = irreps_mid
        self.instructions_before_sort = before
        self.denominator = nn.Parameter(
            torch.tensor([float(denominator)]), requires_grad=train_denominator
        )
        self.convolution = o3.TensorProduct(
            self.irreps_in,
            irreps_filter,
            irreps_mid,
            instructions=instructions,
            shared_weights=False,
            internal_weights=False,
        )
        self.weight_nn = FullyConnectedNet(
            [*radial_layers, self.convolution.weight_numel], radial_act
        )
        self.kernel = UVUKernel(self.convolution)

    def forward(
        self,
        x: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        edge_index: torch.Tensor,
        reference: bool = False,
        slots: tuple[torch.Tensor, int] | None = None,
    ) -> torch.Tensor:
        """New node features ``(N, irreps_out.dim)``.

        ``edge_index[0]`` receives the message from ``edge_index[1]``.
        With ``reference`` the product runs through e3nn's forward.  With
        ``slots`` from :func:`receiver_slots`, the edge inputs are given
        grouped by receiver (``edge_sh`` zero in empty slots; ``edge_index``
        is then ``(senders,)`` per slot) and each node's sum is formed by
        matrix products instead of per-edge messages.
        """
        weight = self.weight_nn(edge_radial)
        n = x.shape[0]
        if slots is not None and not reference:
            src = x[edge_index]  # senders, one per slot
            blocks = self.kernel.blocks(src, edge_sh, weight, slots[1])
        else:
            src = x[edge_index[1]]
            if reference:
                message = self.convolution(src, edge_sh, weight)
                out = torch.zeros(n, message.shape[1], dtype=x.dtype, device=x.device)
                return out.index_add(0, edge_index[0], message) / self.denominator
            # sum each output block over edges before concatenating (cheaper
            # than concatenating per edge)
            blocks = [
                None
                if b is None
                else x.new_zeros(n, *b.shape[1:]).index_add(0, edge_index[0], b)
                for b in self.kernel.blocks(src, edge_sh, weight)
            ]
        nodes = [
            x.new_zeros(n, m.dim) if b is None else b.reshape(n, m.dim)
            for b, m in zip(blocks, self.irreps_out, strict=True)
        ]
        return torch.cat(nodes, dim=1) / self.denominator
