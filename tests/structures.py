"""The varied structure set used by the parity and physics tests."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule


def bulk_si() -> Atoms:
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    return atoms


def triclinic() -> Atoms:
    cell = np.array([[4.6, 0.3, 0.2], [0.9, 4.9, 0.4], [0.5, 0.7, 5.2]])
    frac = np.array(
        [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.1],
            [0.25, 0.7, 0.5],
            [0.8, 0.2, 0.6],
            [0.4, 0.1, 0.85],
        ]
    )
    return Atoms("LiFePO2", scaled_positions=frac, cell=cell, pbc=True)


def slab_with_adsorbate() -> Atoms:
    slab = fcc111("Pt", size=(2, 2, 3), vacuum=7.0)
    add_adsorbate(slab, molecule("CO")[::-1], 1.85, "ontop")
    slab.rattle(0.02, seed=2)
    slab.info.pop("adsorbate_info", None)
    return slab


def molecule_ethanol() -> Atoms:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.02, seed=3)
    return atoms


def small_cell() -> Atoms:
    """NaCl primitive cell: every lattice vector is shorter than the cutoff."""
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.positions[1] += [0.05, -0.03, 0.02]
    return atoms


def one_atom_cell() -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61)
    atoms.set_cell(
        atoms.cell.array @ np.array([[1.02, 0.01, 0], [0, 0.99, 0], [0, 0.02, 1.0]]),
        scale_atoms=True,
    )
    return atoms


STRUCTURES = {
    "bulk": bulk_si,
    "triclinic": triclinic,
    "slab_adsorbate": slab_with_adsorbate,
    "molecule": molecule_ethanol,
    "small_cell": small_cell,
    "one_atom_cell": one_atom_cell,
}
