"""Anomalous relaxations of adsorbates, as classified by AdsorbML and CatBench."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import get_distances

__all__ = [
    "BOND_SCALE",
    "DESORBED_SCALE",
    "EXCLUDING",
    "RECONSTRUCTION_DISTANCE",
    "classify",
    "connected_components",
]

#: Atoms are bonded below this times the sum of their covalent radii.
BOND_SCALE = 1.25
#: An adsorbate is desorbed when no atom is within this times the radii sum
#: of a surface atom.
DESORBED_SCALE = 1.5
#: A host atom moving more than this (Å) means the host reconstructed.
RECONSTRUCTION_DISTANCE = 0.5


def _distances(atoms: Atoms, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, d = get_distances(
        atoms.positions[a], atoms.positions[b], cell=atoms.cell, pbc=atoms.pbc
    )
    return d


def connected_components(atoms: Atoms, indices: np.ndarray) -> int:
    """Number of bonded fragments among ``indices``."""
    indices = np.asarray(indices)
    if len(indices) <= 1:
        return len(indices)
    d = _distances(atoms, indices, indices)
    radii = covalent_radii[atoms.numbers[indices]]
    bonded = d < BOND_SCALE * (radii[:, None] + radii[None, :])
    seen = np.zeros(len(indices), bool)
    count = 0
    for start in range(len(indices)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            i = stack.pop()
            for j in np.where(bonded[i] & ~seen)[0]:
                seen[j] = True
                stack.append(j)
    return count


def classify(
    initial: Atoms,
    final: Atoms,
    adsorbate: np.ndarray,
    host: np.ndarray,
    host_reference: Atoms | None = None,
    surface: bool = True,
    initial_site: str | None = None,
    final_site: str | None = None,
) -> list[str]:
    """Anomaly flags of one relaxed placement.

    Parameters
    ----------
    initial, final : ase.Atoms
        The placement before and after relaxation.
    adsorbate, host : numpy.ndarray
        Indices of adsorbate and host atoms.
    host_reference : ase.Atoms, optional
        The relaxed empty host (same atom order as ``host``), to detect
        reconstruction.
    surface : bool
        A slab (desorption and intercalation apply) or a porous framework.
    initial_site, final_site : str, optional
        Site labels; a change is flagged as ``migrated``.

    Returns
    -------
    list of str
        Among ``desorbed``, ``dissociated``, ``intercalated``,
        ``reconstructed`` and ``migrated``.
    """
    flags = []
    if connected_components(final, adsorbate) > connected_components(
        initial, adsorbate
    ):
        flags.append("dissociated")
    if surface:
        d = _distances(final, adsorbate, host)
        radii = (
            covalent_radii[final.numbers[adsorbate]][:, None]
            + covalent_radii[final.numbers[host]][None, :]
        )
        if not (d < DESORBED_SCALE * radii).any():
            flags.append("desorbed")
        z_host = final.positions[host, 2]
        top = z_host.max()
        if (final.positions[adsorbate, 2] < top - 1.0).any():
            flags.append("intercalated")
    if host_reference is not None:
        shift = final.positions[host] - host_reference.positions
        # minimum image of each displacement, then remove a rigid drift
        frac = np.linalg.solve(final.cell.array.T, shift.T).T
        periodic = np.asarray(final.pbc, bool)
        frac[:, periodic] -= np.round(frac[:, periodic])
        shift = frac @ final.cell.array
        shift -= shift.mean(axis=0)
        if np.linalg.norm(shift, axis=1).max() > RECONSTRUCTION_DISTANCE:
            flags.append("reconstructed")
    if initial_site and final_site and initial_site != final_site:
        flags.append("migrated")
    return flags


#: Flags that exclude a candidate from the reported minimum.  Migration to
#: another site is recorded but kept: the energy then belongs to the final site.
EXCLUDING = ("desorbed", "dissociated", "intercalated", "reconstructed")
