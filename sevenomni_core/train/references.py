"""Statistics that initialise a new model: energy references and scales."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .dataset import Frame

__all__ = ["average_neighbors", "elemental_references", "force_rms"]


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
    from .. import _keys as K

    edges = atoms = 0
    for g in graphs[:max_graphs]:
        edges += g[K.EDGE_INDEX].shape[1]
        atoms += g[K.SPECIES].shape[0]
    return edges / atoms if atoms and edges else 1.0
