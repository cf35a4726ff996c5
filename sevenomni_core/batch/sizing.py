"""How many structures go into one forward pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import _keys as K
from ..model.network import SevenNet

if TYPE_CHECKING:
    from ..model.potential import Potential

__all__ = ["bytes_per_edge", "memory_budget", "plan_batches", "structures_per_batch"]

#: Upper limit on structures per forward pass, whatever the memory allows.
MAX_STRUCTURES = 1024
#: Memory budget on the CPU (bytes) for one forward and backward pass.
CPU_BUDGET = 2 * 1024**3


def bytes_per_edge(network: SevenNet, dtype: torch.dtype) -> int:
    """Estimated bytes held per edge during a forward+backward pass.

    Counts, for each convolution, the per-edge radial weights and messages,
    times a factor for the tensors autograd keeps and the gradient pass.
    """
    size = torch.empty(0, dtype=dtype).element_size()
    per_edge = 0
    for t in range(network.num_layers):
        conv = network._modules[f"{t}_convolution"]
        per_edge += conv.convolution.weight_numel + conv.irreps_out.dim
        per_edge += conv.irreps_in.dim + 64
    return int(per_edge * size * 4)


def memory_budget(device: torch.device) -> int:
    """Bytes one batch may use: half the free GPU memory, or a fixed CPU budget."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    return CPU_BUDGET


def plan_batches(
    graphs: list[dict[str, torch.Tensor]],
    network: SevenNet,
    device: torch.device,
    batch_size: int | str = "auto",
) -> list[list[int]]:
    """Group graph indices, in order, into batches.

    With ``batch_size="auto"`` a batch closes when its edges would exceed the
    memory budget (see :func:`bytes_per_edge`) or it holds
    :data:`MAX_STRUCTURES`; with an integer it holds that many structures.
    """
    if batch_size != "auto":
        n = int(batch_size)
        if n < 1:
            raise ValueError(f"batch_size must be >= 1 or 'auto', got {batch_size}")
        return [
            list(range(i, min(i + n, len(graphs)))) for i in range(0, len(graphs), n)
        ]
    max_edges = max(
        1, memory_budget(device) // bytes_per_edge(network, _dtype(network))
    )
    batches: list[list[int]] = []
    current: list[int] = []
    edges = 0
    for i, g in enumerate(graphs):
        e = int(g[K.EDGE_INDEX].shape[1]) + int(g[K.NUM_ATOMS].sum())
        if current and (edges + e > max_edges or len(current) >= MAX_STRUCTURES):
            batches.append(current)
            current, edges = [], 0
        current.append(i)
        edges += e
    if current:
        batches.append(current)
    return batches


def _dtype(network: SevenNet) -> torch.dtype:
    return network.rescale_atomic_energy.scale.dtype


def structures_per_batch(
    pot: Potential, graphs: list[dict], batch_size: int | str = "auto"
) -> int:
    """How many of ``graphs`` an iterative loop (relax, MD, NEB) keeps active.

    With ``"auto"``, as many structures of the mean size as fit the memory
    budget (at most :data:`MAX_STRUCTURES`); an integer is taken as given.
    """
    if batch_size != "auto":
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1 or 'auto', got {batch_size}")
        return int(batch_size)
    if not graphs:
        return 1
    mean_edges = np.mean(
        [int(g[K.EDGE_INDEX].shape[1]) + int(g[K.NUM_ATOMS].sum()) for g in graphs]
    )
    dtype = pot.network.rescale_atomic_energy.scale.dtype
    per_structure_bytes = 2 * mean_edges * bytes_per_edge(pot.network, dtype)
    fit = int(memory_budget(pot.device) // max(per_structure_bytes, 1))
    return max(1, min(fit, MAX_STRUCTURES))
