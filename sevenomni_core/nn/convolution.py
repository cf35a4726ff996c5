"""The NequIP convolution: radial-weighted tensor products summed over edges."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import nn

from .tensor_product import UVUKernel

__all__ = ["Convolution", "ReceiverSlots", "convolution_instructions", "receiver_slots"]

#: A bucket costs about as much as this many padded slots (the extra matrix
#: products and their launch overhead), which limits how finely nodes are split.
BUCKET_COST = 64


@dataclass(frozen=True)
class ReceiverSlots:
    """Edges grouped by receiver: nodes in buckets of equal slot counts.

    Nodes are reordered by decreasing neighbour count and split into
    contiguous buckets; every node of a bucket gets that bucket's largest
    count of slots, so each bucket's sums over edges are one batched matrix
    product.

    Attributes
    ----------
    edge_of_slot : torch.Tensor
        ``(S,)`` the edge in each slot; empty slots hold ``E`` (the index of
        an appended zero row).
    order : torch.Tensor
        ``(N,)`` the node at each position of the bucket order.
    position : torch.Tensor
        ``(N,)`` the position of each node (the inverse of ``order``).
    buckets : tuple of (int, int)
        ``(nodes, slots per node)`` of each bucket, in order.
    """

    edge_of_slot: torch.Tensor
    order: torch.Tensor
    position: torch.Tensor
    buckets: tuple[tuple[int, int], ...]


def _buckets(degrees: np.ndarray, counts: np.ndarray) -> list[int]:
    """Split sorted (decreasing) distinct degrees into contiguous buckets.

    Minimises padded slots plus :data:`BUCKET_COST` per bucket (dynamic
    programming over the distinct degrees); returns each bucket's end index.
    """
    n = len(degrees)
    cum = np.concatenate([[0], np.cumsum(counts)])
    best = np.zeros(n + 1)
    last = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        # a bucket of degrees i..j-1 pads every node to degrees[i]
        cost = best[:j] + degrees[:j] * (cum[j] - cum[:j]) + BUCKET_COST
        last[j] = int(np.argmin(cost))
        best[j] = cost[last[j]]
    ends = []
    j = n
    while j > 0:
        ends.append(j)
        j = int(last[j])
    return ends[::-1]


def receiver_slots(receivers: torch.Tensor, n_nodes: int) -> ReceiverSlots | None:
    """Edges grouped by receiver into buckets of slots (None without edges).

    See :class:`ReceiverSlots`.
    """
    e = receivers.shape[0]
    if e == 0 or n_nodes == 0:
        return None
    counts = torch.bincount(receivers, minlength=n_nodes)
    order = torch.argsort(counts, descending=True, stable=True)
    sorted_counts = counts[order]
    degrees, per_degree = torch.unique_consecutive(sorted_counts, return_counts=True)
    degrees_np = degrees.cpu().numpy()
    per_degree_np = per_degree.cpu().numpy()
    ends = _buckets(degrees_np, per_degree_np)
    buckets, start = [], 0
    slot_degree = []
    for end in ends:
        nodes = int(per_degree_np[start:end].sum())
        # nodes without neighbours get one empty slot, so that every bucket
        # is a (nodes, slots, ...) block the matrix products can take
        slots_per_node = max(int(degrees_np[start]), 1)
        buckets.append((nodes, slots_per_node))
        slot_degree.append(np.full(nodes, slots_per_node))
        start = end
    width = torch.as_tensor(np.concatenate(slot_degree), device=receivers.device)
    position = torch.empty_like(order)
    position[order] = torch.arange(n_nodes, device=receivers.device)
    slot_start = torch.cumsum(width, 0) - width  # first slot of each position
    edge_start = torch.cumsum(sorted_counts, 0) - sorted_counts
    receiver_pos = position[receivers]
    by_pos = torch.argsort(receiver_pos, stable=True)
    pos_sorted = receiver_pos[by_pos]
    rank = torch.arange(e, device=receivers.device) - edge_start[pos_sorted]
    edge_of_slot = receivers.new_full((int(width.sum()),), e)
    edge_of_slot[slot_start[pos_sorted] + rank] = by_pos
    return ReceiverSlots(edge_of_slot, order, position, tuple(buckets))


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
    ) -> torch.Tensor:
        """New node features ``(N, irreps_out.dim)``.

        ``edge_index[0]`` receives the message from ``edge_index[1]``.
        With ``reference`` the product runs through e3nn's forward.
        :meth:`grouped` computes the same with edges grouped by receiver.
        """
        weight = self.weight_nn(edge_radial)
        n = x.shape[0]
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
        return self._nodes(blocks, x)

    def grouped(
        self,
        x: torch.Tensor,
        edge_sh: Sequence[torch.Tensor],
        edge_radial: Sequence[torch.Tensor],
        senders: Sequence[torch.Tensor],
        buckets: tuple[tuple[int, int], ...],
    ) -> torch.Tensor:
        """:meth:`forward` with edges in receiver slots, one entry per bucket.

        Nodes are in the bucket order of :class:`ReceiverSlots`; for each
        bucket of ``buckets``, ``edge_sh``, ``edge_radial`` and ``senders``
        (positions in that order) are given per slot, ``edge_sh`` zero in
        empty slots.  Each node's sum is formed by matrix products instead
        of per-edge messages, and the radial network's last layer is applied
        per path, so that no large tensor is split.
        """
        *hidden_layers, last = self.weight_nn
        # e3nn's last layer: x @ (W / sqrt(h_in var_in / var_out)), no activation
        w_last = last.weight / (last.h_in * last.var_in / last.var_out) ** 0.5
        w_paths = torch.split(w_last.to(x.dtype), self.kernel.path_sizes, dim=1)
        weights = []
        for radial in edge_radial:
            h = radial
            for layer in hidden_layers:
                h = layer(h)
            weights.append([torch.mm(h, w) for w in w_paths])
        blocks = self.kernel.grouped_blocks(x, senders, edge_sh, weights, buckets)
        return self._nodes(blocks, x)

    def _nodes(
        self, blocks: list[torch.Tensor | None], x: torch.Tensor
    ) -> torch.Tensor:
        """Blocks ``(N, mul, 2l+1)`` (None: zero) of the nodes of ``x``
        flattened, over the denominator."""
        n = x.shape[0]
        nodes = [
            x.new_zeros(n, dim) if b is None else b.reshape(n, dim)
            for b, dim in zip(blocks, self.kernel.out_dims, strict=True)
        ]
        return torch.cat(nodes, dim=1) / self.denominator
