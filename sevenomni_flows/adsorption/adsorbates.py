"""Adsorbates: geometry, binding atom, and orientation toward a surface."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import molecule

__all__ = ["ADSORBATES", "GAS_MOLECULES", "Adsorbate", "get_adsorbate", "oriented"]


@dataclass(frozen=True)
class Adsorbate:
    """A molecule or fragment to adsorb.

    Attributes
    ----------
    name : str
        Its name, e.g. ``"CO"``.
    atoms : ase.Atoms
        Gas-phase geometry (Å).
    binding : int
        Index of the atom that binds to the surface (C of CO, O of OH).
    kinetic_diameter : float or None
        Å, of the gas molecules (Breck, *Zeolite Molecular Sieves*, 1974,
        table 8.14); None for fragments.
    """

    name: str
    atoms: Atoms
    binding: int
    kinetic_diameter: float | None = None

    @property
    def is_gas(self) -> bool:
        """Whether it is a stable gas-phase molecule (its own reference)."""
        return self.name in GAS_MOLECULES


def _mol(name: str, order: list[int] | None = None) -> Atoms:
    atoms = molecule(name)
    return atoms[order] if order is not None else atoms


#: Molecules that exist in the gas phase and are relaxed as references.
GAS_MOLECULES = ("H2", "H2O", "CO", "CO2", "N2", "CH4", "NH3", "O2")

#: Every adsorbate by name: geometry, binding atom, and for the gases the
#: kinetic diameter (Å, Breck 1974).
ADSORBATES: dict[str, Adsorbate] = {
    a.name: a
    for a in (
        Adsorbate("H", Atoms("H"), 0),
        Adsorbate("O", Atoms("O"), 0),
        Adsorbate("N", Atoms("N"), 0),
        Adsorbate("C", Atoms("C"), 0),
        Adsorbate("OH", Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]]), 0),
        Adsorbate("CO", _mol("CO", [1, 0]), 0, 3.76),  # ase lists O first; C binds
        Adsorbate("NO", _mol("NO", [0, 1]), 0),
        Adsorbate("H2O", _mol("H2O"), 0, 2.65),
        Adsorbate("CO2", _mol("CO2"), 1, 3.30),  # end-on through O
        Adsorbate("N2", _mol("N2"), 0, 3.64),
        Adsorbate("CH4", _mol("CH4"), 0, 3.80),
        Adsorbate("H2", _mol("H2"), 0, 2.89),
        Adsorbate("NH3", _mol("NH3"), 0, 2.60),
        Adsorbate("O2", _mol("O2"), 0, 3.46),
    )
}


def get_adsorbate(name: str) -> Adsorbate:
    """Look up an adsorbate by name (case-insensitive).

    Raises
    ------
    ValueError
        Naming the unknown adsorbate and listing the known ones.
    """
    for key, ads in ADSORBATES.items():
        if key.lower() == str(name).lower():
            return ads
    raise ValueError(f"unknown adsorbate {name!r}; known: {', '.join(ADSORBATES)}")


def oriented(ads: Adsorbate, direction: np.ndarray) -> Atoms:
    """The adsorbate with its binding atom at the origin, the rest along ``direction``.

    The rest of the molecule lies on the side of ``direction`` (away from
    the surface or metal it binds to).
    """
    atoms = ads.atoms.copy()
    atoms.positions -= atoms.positions[ads.binding]
    if len(atoms) > 1:
        others = np.delete(atoms.positions, ads.binding, axis=0)
        axis = others.mean(axis=0)
        if np.linalg.norm(axis) < 1e-6:  # symmetric about the binding atom
            axis = others[0]
        atoms.rotate(axis, direction)
    return atoms
