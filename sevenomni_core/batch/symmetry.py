"""Space-group symmetry kept during a relaxation, as ASE's ``FixSymmetry``.

A structure that carries ``FixSymmetry(symprec=p)`` relaxes within the space
group spglib finds for its starting structure at precision ``p``: every step,
its forces are averaged over the group's operations (each rotated and moved
to the atom its operation maps it onto) and its stress is averaged as
``C σ Cᵀ`` over the operations' Cartesian rotations ``C``.  The optimiser
steps are then symmetric, so a structure held at a saddle point by its
symmetry (simple-cubic Cu, cubic BaTiO3) stays there instead of rolling off.
The symmetry-breaking part of the start, if any, is kept as it is, as in ASE.

>>> import numpy as np
>>> from ase.build import bulk
>>> sym = Symmetry.of(bulk("Cu", cubic=True), symprec=0.01, label="cu")
>>> len(sym.rotations)  # Fm-3m in the conventional cell: 48 rotations x 4
192
>>> sym.stress(bulk("Cu", cubic=True).cell.array, np.diag([1.0, 2.0, 3.0]))
array([[2., 0., 0.],
       [0., 2., 0.],
       [0., 0., 2.]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["Symmetry"]


@dataclass(frozen=True)
class Symmetry:
    """The space-group operations of one structure, ready to symmetrise.

    Attributes
    ----------
    rotations : numpy.ndarray
        ``(n_ops, 3, 3)`` integer rotations acting on fractional coordinates.
    images : numpy.ndarray
        ``(n_ops, n_atoms)``: the atom each operation maps atom ``i`` onto.
    """

    rotations: np.ndarray
    images: np.ndarray

    @classmethod
    def of(cls, atoms: Atoms, symprec: float, label: str) -> Symmetry:
        """The operations spglib finds for ``atoms`` at ``symprec`` (Å).

        Raises ``ValueError`` naming ``label`` when spglib finds none or an
        operation does not map the atoms onto themselves one to one.
        """
        import spglib

        frac = atoms.get_scaled_positions()
        cell = (atoms.cell.array, frac, atoms.numbers)
        data = spglib.get_symmetry_dataset(cell, symprec=symprec)
        if data is None:
            raise ValueError(
                f"{label}: FixSymmetry: spglib finds no symmetry at "
                f"symprec {symprec:g} Å"
            )
        rotations = np.asarray(data.rotations)
        images = np.empty((len(rotations), len(atoms)), dtype=int)
        for k, (r, t) in enumerate(zip(rotations, data.translations, strict=True)):
            delta = frac[None] - (frac @ r.T + t)[:, None]  # (i, j, 3)
            delta -= np.round(delta)
            images[k] = np.linalg.norm(delta @ atoms.cell.array, axis=-1).argmin(1)
        if any(len(set(row)) != len(atoms) for row in images.tolist()):
            raise ValueError(
                f"{label}: FixSymmetry: the symmetry spglib finds at symprec "
                f"{symprec:g} Å does not map the atoms one to one; "
                "refine the structure (ase.spacegroup.symmetrize.refine_symmetry)"
            )
        return cls(rotations, images)

    def cartesian(self, cell: np.ndarray) -> np.ndarray:
        """The operations' rotations in Cartesian coordinates of ``cell``
        (lattice vectors as rows): ``C = Lᵀ R L⁻ᵀ``."""
        return cell.T @ self.rotations @ np.linalg.inv(cell.T)

    def forces(self, cell: np.ndarray, forces: np.ndarray) -> np.ndarray:
        """``forces`` (``(n_atoms, 3)``, eV/Å) averaged over the operations."""
        out = np.zeros_like(forces)
        for c, image in zip(self.cartesian(cell), self.images, strict=True):
            out[image] += forces @ c.T
        return out / len(self.rotations)

    def stress(self, cell: np.ndarray, stress: np.ndarray) -> np.ndarray:
        """A full 3x3 ``stress`` averaged as ``C σ Cᵀ`` over the operations."""
        c = self.cartesian(cell)
        return (c @ stress @ c.transpose(0, 2, 1)).mean(axis=0)
