"""Neighbour lists, computed by vesin."""

from __future__ import annotations

import numpy as np
from vesin import NeighborList

__all__ = ["neighbor_list"]


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs ``(i, j)`` closer than ``cutoff``, with periodic images.

    Parameters
    ----------
    positions : numpy.ndarray
        Cartesian positions, shape ``(N, 3)``, in Å.
    cell : numpy.ndarray
        Lattice vectors as rows, shape ``(3, 3)``, in Å.  Rows along
        non-periodic directions are ignored.
    pbc : numpy.ndarray
        Periodicity of each lattice direction, shape ``(3,)``.
    cutoff : float
        Cutoff radius in Å.

    Returns
    -------
    i, j : numpy.ndarray
        Centre and neighbour indices, shape ``(E,)``, int64.
    shifts : numpy.ndarray
        Integer cell shifts ``S`` with ``r_ij = r_j - r_i + S @ cell``,
        shape ``(E, 3)``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> i, j, s = neighbor_list(np.array([[0.0, 0, 0], [1.0, 0, 0]]),
    ...                         np.zeros((3, 3)), np.array([False] * 3), 2.0)
    >>> sorted(zip(i.tolist(), j.tolist()))
    [(0, 1), (1, 0)]
    """
    pbc = np.asarray(pbc, dtype=bool)
    box = np.array(cell, dtype=np.float64, copy=True)
    box[~pbc] = 0.0
    if not pbc.any():
        box[:] = 0.0
    i, j, shifts = NeighborList(cutoff=cutoff, full_list=True).compute(
        points=np.ascontiguousarray(positions, dtype=np.float64),
        box=box,
        periodic=pbc if pbc.any() else False,
        quantities="ijS",
        copy=True,
    )
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.float64)
