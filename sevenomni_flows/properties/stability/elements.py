"""Elemental references: one ground-state prototype per element.

Formation energies need each element's energy in its standard state,
computed with the same model, task and relaxation as the compounds.  The
prototypes come from ASE's table of reference states
(``ase.data.reference_states``, taken from N. W. Ashcroft and N. D. Mermin,
*Solid State Physics*, 1976), built with ``ase.build.bulk``; the diatomic
gases (H, N, O, F) are one molecule in a box of :data:`BOX` Å with ASE's
bond length.  Elements whose reference state ``ase.build.bulk`` cannot
build (complex cells such as α-Mn, B, P, S, Cl, Ga, Br, I, and the elements
without an entry) have no shipped reference: a material containing one
fails unless the screened set or ``hull_entries`` holds that element.
"""

from __future__ import annotations

from functools import cache

from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

__all__ = ["BOX", "PREFIX", "SOURCE", "prototype", "references"]

#: Where the prototypes come from (recorded on the documents).
SOURCE = (
    "ASE reference states (ase.data.reference_states, from Ashcroft and "
    "Mermin, Solid State Physics, 1976); H2, N2, O2, F2 as molecules in a box"
)
#: Edge of the box a diatomic molecule sits in, Å (beyond any model cutoff).
BOX = 12.0
#: Label prefix of the reference structures in a screening (for people to
#: read: a screening tells references by their role, not by this label).
PREFIX = "reference:"


@cache
def prototype(element: str) -> Structure | None:
    """The reference structure of ``element``, or None if none is shipped."""
    number = atomic_numbers.get(element)
    state = reference_states[number] if number is not None else None
    if not state:
        return None
    if state["symmetry"] == "diatom":
        atoms = Atoms(
            [element, element],
            positions=[[0, 0, 0], [0, 0, state["d"]]],
            cell=[BOX, BOX + 0.5, BOX + 1.0],  # no accidental symmetry
            pbc=True,
        )
    else:
        try:
            atoms = bulk(element)
        except (ValueError, KeyError, NotImplementedError):
            return None  # a cell ase.build.bulk cannot make
    return AseAtomsAdaptor.get_structure(atoms)


def references(structures: list[Structure]) -> list[tuple[str, Structure]]:
    """The reference structure of every element of ``structures`` that has
    one, as ``(label, structure)``, sorted by element."""
    elements = sorted({el.symbol for s in structures for el in s.composition})
    out = []
    for element in elements:
        proto = prototype(element)
        if proto is not None:
            out.append((f"{PREFIX}{element}", proto.copy()))
    return out
