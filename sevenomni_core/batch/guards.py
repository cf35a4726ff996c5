"""Checks that stop one structure of a batch alone: constraints, blow-ups, contacts.

Shared by relaxation, MD and NEB, which word the failure for their own loop
("diverged", "blew up").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from .. import _keys as K
from ..constraints import (
    SUPPORTED_CONSTRAINTS,
    symmetry_precision,
    unsupported_constraint,
)
from ..data import edge_vectors

__all__ = [
    "DIVERGED_FORCE",
    "SUPPORTED_CONSTRAINTS",
    "closest_pair",
    "fixed_mask",
    "symmetry_precision",
    "too_close",
    "unsupported_constraint",
]

#: Forces above this (eV/Å) mean the structure exploded.
DIVERGED_FORCE = 1e4


def fixed_mask(
    atoms: Atoms,
    extra: Sequence[int] | None,
    label: str,
    supported: Sequence[str] = ("FixAtoms",),
) -> np.ndarray:
    """Atoms held fixed: ``FixAtoms`` constraints of ``atoms`` plus ``extra``.

    Raises ``ValueError`` naming ``label`` for a constraint not in
    ``supported`` (which the caller honours otherwise) or an index out of
    range.
    """
    why = unsupported_constraint(atoms, supported)
    if why is not None:
        raise ValueError(f"{label}: {why}")
    mask = np.zeros(len(atoms), dtype=bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            mask[c.index] = True
    if extra is not None:
        idx = np.asarray(extra, dtype=int)
        if idx.size and (idx.min() < -len(atoms) or idx.max() >= len(atoms)):
            raise ValueError(
                f"{label}: fixed index out of range for {len(atoms)} atoms"
            )
        mask[idx] = True
    return mask


def closest_pair(graph: dict) -> tuple[int, int, float] | None:
    """The closest pair ``(i <= j, distance)`` among the graph's edges, or None."""
    if graph[K.EDGE_INDEX].shape[1] == 0:
        return None
    lengths = edge_vectors(graph).norm(dim=1)
    k = int(lengths.argmin())
    i, j = sorted(graph[K.EDGE_INDEX][:, k].tolist())
    return int(i), int(j), float(lengths[k])


def too_close(graph: dict, min_distance: float) -> str | None:
    """Which atoms of ``graph`` are closer than ``min_distance`` (Å), or None.

    Read from the edge lengths of the graph the model is evaluated on, so no
    extra pair search is made.
    """
    pair = closest_pair(graph)
    if pair is None or pair[2] >= min_distance:
        return None
    i, j, d = pair
    who = f"atom {i} and its periodic image" if i == j else f"atoms {i} and {j}"
    return f"{who} are {d:.3g} Å apart (floor {min_distance:g} Å)"
