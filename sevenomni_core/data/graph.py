"""Atomic graphs: from ASE structures to the tensors a model reads.

A graph is a plain ``dict`` of tensors keyed by :mod:`sevenomni_core._keys`.
Positions, cell and shifts stay in float64 so that edge vectors are computed
to full precision before they are cast to the model's dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from ase import Atoms

from .. import _keys as K
from .neighbors import neighbor_list

__all__ = ["AtomGraph", "atoms_to_graph", "collate", "edge_vectors"]

AtomGraph = dict[str, torch.Tensor]


def atoms_to_graph(
    atoms: Atoms,
    cutoff: float,
    z_to_index: np.ndarray,
    task_index: int = 0,
) -> AtomGraph:
    """Build the graph of one structure (on the CPU).

    Parameters
    ----------
    atoms : ase.Atoms
        The structure; it is not modified.
    cutoff : float
        Neighbour cutoff in Å.
    z_to_index : numpy.ndarray
        Map from atomic number to the model's species index (-1 if unknown),
        shape ``(>= 119,)``.
    task_index : int
        Index of the task (DFT protocol) this structure is evaluated with.

    Returns
    -------
    AtomGraph
        A dictionary of tensors with a batch of one.
    """
    # copies: the graph's tensors share memory with these arrays, and must
    # not change when the caller moves the atoms afterwards
    pos = np.array(atoms.positions, dtype=np.float64)
    cell = np.array(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    i, j, shifts = neighbor_list(pos, cell, pbc, cutoff)
    species = z_to_index[atoms.numbers]
    volume = abs(float(np.linalg.det(cell))) if pbc.any() else 0.0
    return {
        K.POSITIONS: torch.from_numpy(pos),
        K.SPECIES: torch.from_numpy(species.astype(np.int64)),
        K.BATCH: torch.zeros(len(atoms), dtype=torch.int64),
        K.EDGE_INDEX: torch.from_numpy(np.stack([i, j])),
        K.EDGE_SHIFT: torch.from_numpy(shifts),
        K.CELL: torch.from_numpy(cell).unsqueeze(0),
        K.VOLUME: torch.tensor([volume], dtype=torch.float64),
        K.NUM_ATOMS: torch.tensor([len(atoms)], dtype=torch.int64),
        K.TASK: torch.tensor([task_index], dtype=torch.int64),
        K.PBC: torch.from_numpy(pbc.copy()).unsqueeze(0),
    }


def collate(graphs: Sequence[Mapping[str, torch.Tensor]]) -> AtomGraph:
    """Pack graphs of single structures into one disconnected graph.

    Edge indices are offset by the atoms before them and the batch vector
    numbers the structures in order.
    """
    if len(graphs) == 1:
        return dict(graphs[0])
    counts = torch.cat([g[K.NUM_ATOMS] for g in graphs])
    offsets = torch.cumsum(counts, 0) - counts
    out: AtomGraph = {}
    for key in (K.POSITIONS, K.SPECIES, K.EDGE_SHIFT):
        out[key] = torch.cat([g[key] for g in graphs])
    for key in (K.CELL, K.VOLUME, K.NUM_ATOMS, K.TASK):
        out[key] = torch.cat([g[key] for g in graphs])
    if all(K.PBC in g for g in graphs):
        out[K.PBC] = torch.cat([g[K.PBC] for g in graphs])
    out[K.EDGE_INDEX] = torch.cat(
        [
            g[K.EDGE_INDEX] + off
            for g, off in zip(graphs, offsets.tolist(), strict=True)
        ],
        dim=1,
    )
    out[K.BATCH] = torch.repeat_interleave(torch.arange(len(graphs)), counts)
    return out


def edge_vectors(graph: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Edge vectors ``r_j - r_i + S @ cell`` in the dtype of the positions."""
    i, j = graph[K.EDGE_INDEX]
    pos = graph[K.POSITIONS]
    cell = graph[K.CELL][graph[K.BATCH][i]]
    shift = torch.bmm(graph[K.EDGE_SHIFT].unsqueeze(1), cell).squeeze(1)
    return pos[j] - pos[i] + shift
