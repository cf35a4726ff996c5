"""Is a structure a 3D bulk crystal?  The dimensionality of its contact network.

Bulk-only properties (elastic constants, phonons, equations of state, ...)
mean nothing for a molecule in a box or a slab with vacuum, and fail on them
in obscure ways.  Two atoms are in contact when they are closer than the sum
of their covalent radii plus :data:`CONTACT_GAP`: generous enough that a
molecular or layered crystal (solid CO2, graphite, solid Ar) is one 3D
network, short of the vacuum around a molecule or a slab (> 6 Å).  ASE's
rank determination (Mounet et al., Nat. Nanotechnol. 13, 246 (2018)) then
gives each connected component's dimensionality; the periodic images of one
component span its rank.

ASE's ``analyze_dimensionality`` scans every bonding threshold instead (and
fails on a molecule in a box in ASE 3.23-3.29); one threshold is enough here.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry.dimensionality.rank_determination import RDA
from ase.neighborlist import neighbor_list
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .schemas import structure_id

__all__ = ["CONTACT_GAP", "WHAT", "bonded_dimension", "check_bulk", "not_bulk"]

#: Å added to the sum of two covalent radii for a contact.
CONTACT_GAP = 2.5
#: What a network of each dimensionality below 3 is.
WHAT = {
    0: "a molecule or cluster in a box",
    1: "a chain or wire with vacuum around it",
    2: "a slab or layer with vacuum",
}


def bonded_dimension(atoms: Atoms) -> int:
    """The highest dimensionality (0-3) of the contact network's components.

    Examples
    --------
    >>> from ase.build import bulk, molecule
    >>> bonded_dimension(bulk("Cu"))
    3
    >>> co = molecule("CO", vacuum=5.0, pbc=True)
    >>> bonded_dimension(co)
    0
    """
    radii = covalent_radii[atoms.numbers]
    first, second, shift, dist = neighbor_list("ijSd", atoms, radii + CONTACT_GAP / 2)
    once = (first < second) | ((first == second) & _positive(shift))
    first, second, shift = first[once], second[once], shift[once]
    excess = dist[once] - radii[first] - radii[second]
    rda = RDA(len(atoms))
    found = 0
    step = max(len(atoms), 64)
    order = np.argsort(excess, kind="stable")  # closest contacts first
    for start in range(0, len(order), step):
        for k in order[start : start + step]:
            rda.insert_bond(int(first[k]), int(second[k]), tuple(shift[k].tolist()))
        histogram = rda.check()  # components of each dimensionality 0-3
        found = int(np.nonzero(histogram)[0].max())
        if found == 3:  # a 3D network: the other contacts change nothing
            break
    return found


def _positive(shift: np.ndarray) -> np.ndarray:
    """Whether each image shift is lexicographically positive (one of ±S)."""
    first = np.argmax(shift != 0, axis=1)
    return shift[np.arange(len(shift)), first] > 0


#: The dimensionality of each structure seen, by structure id: every
#: bulk-only property of a screening asks about the same relaxed structures.
_SEEN: dict[str, int] = {}
_MAX_SEEN = 65536


def not_bulk(structure: Structure, label: str | None, prop: str) -> str | None:
    """Why ``prop`` cannot run on ``structure`` (not a 3D bulk crystal), or None.

    A structure's dimensionality is computed once per process.
    """
    key = structure_id(structure)
    dim = _SEEN.get(key)
    if dim is None:
        if len(_SEEN) >= _MAX_SEEN:
            _SEEN.clear()
        dim = _SEEN[key] = bonded_dimension(AseAtomsAdaptor.get_atoms(structure))
    if dim == 3:
        return None
    name = structure.composition.reduced_formula
    if label:
        name = f"{name} (label {label})"
    return (
        f"{name}: not a 3D bulk crystal: its bonded network is "
        f"{dim}D ({WHAT[dim]}); {prop} needs a bulk"
    )


def check_bulk(structure, label: str | None, prop: str) -> None:
    """Raise ValueError unless ``structure`` is a periodic 3D bulk crystal.

    The message is :func:`not_bulk`'s, naming ``label`` and ``prop``.
    """
    if not isinstance(structure, Structure):
        raise ValueError(
            f"{label}: {prop} needs a periodic bulk structure, got a molecule"
        )
    why = not_bulk(structure, label, prop)
    if why:
        raise ValueError(why)
