"""Several ways of writing down one crystal, each with the rotation that
relates it to the structure it was made from.

A representation is a function of a structure (so that it applies alike to
both end points of a band) and the Cartesian rotation ``R`` that maps the
original onto it: a position ``x`` of the original is ``R x + t`` in the
copy.  Tensors computed on the copy are rotated back as ``Rᵀ T R``.

>>> [r.name for r in representations(("primitive", "rotated"))]
['primitive', 'rotated']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from sevenomni_core.testing import random_rotation

__all__ = [
    "NON_DIAGONAL",
    "REPRESENTATIONS",
    "Representation",
    "conventional",
    "permuted",
    "primitive",
    "representations",
    "rotated",
    "supercell",
]

#: A supercell that is not a repetition along the axes (det 2).
NON_DIAGONAL = ((1, 1, 0), (-1, 1, 0), (0, 0, 1))


@dataclass(frozen=True)
class Representation:
    """One way of writing down a structure.

    Parameters
    ----------
    name : str
        What it is, e.g. ``"supercell 2x1x1"``.
    build : callable
        The copy of a structure (same crystal, other cell, frame or order).
    rotation : ndarray or None
        The Cartesian rotation ``R`` from the original to the copy; None
        where the frame is not kept (a framework written to CIF).
    settings : dict
        Maker settings that go with it (an equivalent Miller index).
    rename : dict
        Keys of per-facet results on the copy -> the original's keys.
    """

    name: str
    build: Callable[[Structure], Structure]
    rotation: np.ndarray | None = field(default_factory=lambda: np.eye(3))
    settings: dict = field(default_factory=dict)
    rename: dict = field(default_factory=dict)


def primitive(structure: Structure) -> Structure:
    """The primitive cell, in the original's Cartesian frame (no rotation)."""
    return structure.get_primitive_structure(tolerance=0.01)


def conventional(structure: Structure) -> Structure:
    """The conventional standard cell, built from the primitive cell as an
    integer supercell of it, so that it keeps the original's frame and
    atomic positions (spglib only chooses the cell)."""
    prim = primitive(structure)
    analyzer = SpacegroupAnalyzer(prim, symprec=0.01)
    dataset = analyzer.get_symmetry_dataset()
    std = np.asarray(dataset.std_lattice)  # rows, in spglib's rotated frame
    rot = np.asarray(dataset.std_rotation_matrix)
    in_frame = std @ rot  # the same vectors in the original's frame
    matrix = in_frame @ np.linalg.inv(prim.lattice.matrix)
    rounded = np.rint(matrix)
    if not np.allclose(matrix, rounded, atol=1e-3) or np.linalg.det(rounded) < 0.5:
        raise ValueError(
            f"{structure.reduced_formula}: the conventional cell is not an "
            f"integer supercell of the primitive one ({matrix.round(3).tolist()})"
        )
    return supercell(rounded.astype(int).tolist())(prim)


def supercell(matrix) -> Callable[[Structure], Structure]:
    """A function making the supercell ``matrix`` (rows: new vectors in the
    old basis) of a structure."""

    def build(structure: Structure) -> Structure:
        return structure.make_supercell(matrix, in_place=False)

    return build


def rotated(rotation: np.ndarray, translation) -> Callable[[Structure], Structure]:
    """A function rotating a structure's lattice and Cartesian positions by
    ``rotation`` and translating the atoms by ``translation`` (Å)."""

    def build(structure: Structure) -> Structure:
        lattice = Lattice(structure.lattice.matrix @ rotation.T)
        cart = structure.cart_coords @ rotation.T + np.asarray(translation)
        return Structure(
            lattice,
            structure.species,
            cart,
            coords_are_cartesian=True,
            to_unit_cell=True,
            site_properties=structure.site_properties or None,
        )

    return build


def permuted(seed: int = 0) -> Callable[[Structure], Structure]:
    """A function listing a structure's sites in a seeded random order (the
    same order for structures of the same size, e.g. two band end points)."""

    def build(structure: Structure) -> Structure:
        order = np.random.default_rng(seed).permutation(len(structure))
        return Structure.from_sites([structure[int(i)] for i in order])

    return build


def _rotation(seed: int) -> np.ndarray:
    return random_rotation(np.random.default_rng(seed))


def _catalogue(seed: int) -> dict[str, Representation]:
    rot = _rotation(seed)
    return {
        "reference": Representation("reference", lambda s: s.copy()),
        "primitive": Representation("primitive", primitive),
        "conventional": Representation("conventional", conventional),
        "supercell 2x1x1": Representation(
            "supercell 2x1x1", supercell([[2, 0, 0], [0, 1, 0], [0, 0, 1]])
        ),
        "supercell non-diagonal": Representation(
            "supercell non-diagonal", supercell(NON_DIAGONAL)
        ),
        "rotated": Representation("rotated", rotated(rot, [0.37, -0.21, 0.53]), rot),
        "permuted": Representation("permuted", permuted(seed)),
    }


#: The names of the representations :func:`representations` knows.
REPRESENTATIONS = tuple(_catalogue(0))


def representations(names: Iterable[str], seed: int = 0) -> list[Representation]:
    """The representations called ``names`` (see :data:`REPRESENTATIONS`);
    ``seed`` fixes the random rotation, translation and permutation."""
    known = _catalogue(seed)
    out = []
    for name in names:
        if name not in known:
            raise ValueError(
                f"unknown representation {name!r}; choose from {list(known)}"
            )
        out.append(known[name])
    return out
