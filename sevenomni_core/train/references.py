"""Statistics that initialise a new model: energy references and scales."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .. import _keys as K
from ..model.network import SevenNet
from .dataset import Frame

__all__ = [
    "average_neighbors",
    "elemental_references",
    "force_rms",
    "refit_task_shift",
]


def elemental_references(frames: Sequence[Frame], species: Sequence[int]) -> np.ndarray:
    """Per-element energies ``e_Z`` (eV) with ``E ≈ sum_Z n_Z e_Z``, least squares.

    Parameters
    ----------
    frames : sequence of Frame
        Frames of one task.
    species : sequence of int
        Atomic numbers, in the model's species order.

    Returns
    -------
    numpy.ndarray
        ``(len(species),)``; elements absent from ``frames`` get 0 (the
        minimum-norm solution).
    """
    index = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(frames), len(species)))
    energies = np.array([f.energy for f in frames])
    for row, f in enumerate(frames):
        for z in f.atoms.numbers:
            counts[row, index[int(z)]] += 1
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


def force_rms(frames: Sequence[Frame]) -> float:
    """Root mean square of all force components (eV/Å); 1 when all are zero."""
    forces = np.concatenate([f.forces.ravel() for f in frames])
    rms = float(np.sqrt(np.mean(forces**2))) if forces.size else 0.0
    return rms if rms > 0 else 1.0


def average_neighbors(graphs: Sequence[dict], max_graphs: int = 2000) -> float:
    """Mean number of neighbours per atom over (up to ``max_graphs``) graphs."""
    edges = atoms = 0
    for g in graphs[:max_graphs]:
        edges += g[K.EDGE_INDEX].shape[1]
        atoms += g[K.SPECIES].shape[0]
    return edges / atoms if atoms and edges else 1.0


@torch.no_grad()
def refit_task_shift(model: SevenNet, samples: Sequence, task: int, batch: int = 16):
    """Move a task's per-element energy shifts onto its data, by least squares.

    The residual energies ``E_label - E_model`` of ``samples`` are fitted as
    ``sum_Z n_Z d_Z`` and ``d_Z`` is added to row ``task`` of the task-wise
    shift table.  Forces and stress do not change.

    Returns
    -------
    numpy.ndarray
        The shifts added, per species index (0 for species not in the data).
    """
    from ..data.graph import collate

    table = model.rescale_atomic_energy.shift
    n_species = model.config.num_species
    counts = np.zeros((len(samples), n_species))
    residual = np.zeros(len(samples))
    device = table.device
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        graph = {k: v.to(device) for k, v in collate([s.graph for s in chunk]).items()}
        pred = model(graph, compute_forces=False, compute_stress=False)[K.ENERGY]
        for k, s in enumerate(chunk):
            row = start + k
            residual[row] = float(s.energy[0]) - float(pred[k])
            counts[row] = np.bincount(s.graph[K.SPECIES].numpy(), minlength=n_species)
    present = counts.sum(axis=0) > 0
    delta = np.zeros(n_species)
    delta[present], *_ = np.linalg.lstsq(counts[:, present], residual, rcond=None)
    table[task] += torch.as_tensor(delta, dtype=table.dtype, device=device)
    return delta
