"""Guests in metal-organic frameworks: reading frameworks and placing guests."""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms
from ase.geometry import get_distances
from pymatgen.core import Element, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .adsorbates import Adsorbate, oriented

__all__ = [
    "MIN_GUEST_DISTANCE",
    "MIN_LENGTH",
    "OPEN_METAL_DISTANCE",
    "bound_at",
    "guest_placements",
    "open_metals",
    "read_framework",
    "repeats",
]

#: Guest atoms closer than this (Å) to a framework atom are rejected.
MIN_GUEST_DISTANCE = 2.0
#: Shortest lattice vector (Å) a framework is repeated to: beyond the
#: model's cutoff on both sides of a guest.
MIN_LENGTH = 12.0
#: Metal to binding-atom distance of a guest placed at an open metal, Å.
OPEN_METAL_DISTANCE = 2.3


def repeats(lengths, min_length: float = MIN_LENGTH) -> list[int]:
    """Repeats of each lattice vector to reach ``min_length`` Å."""
    return [max(1, int(np.ceil(min_length / x))) for x in lengths]


def read_framework(path: str, min_length: float = MIN_LENGTH) -> Atoms:
    """A framework from a CIF, checked, repeated to ``min_length`` Å per axis.

    Raises
    ------
    ValueError
        If the file does not parse, has partially occupied sites, or has
        atoms closer than 0.5 Å (naming them).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_file(path)
    except Exception as err:  # pymatgen raises many kinds for bad CIFs
        raise ValueError(f"{path}: cannot parse the framework: {err}") from err
    if not structure.is_ordered:
        site = next(i for i, s in enumerate(structure) if not s.is_ordered)
        raise ValueError(
            f"{path}: partially occupied site {site} ({structure[site].species}); "
            "the framework must be ordered"
        )
    d = structure.distance_matrix + np.eye(len(structure)) * 1e3
    i, j = np.unravel_index(np.argmin(d), d.shape)
    if d[i, j] < 0.5:
        raise ValueError(
            f"{path}: overlapping sites {i} ({structure[i].specie}) and {j} "
            f"({structure[j].specie}), {d[i, j]:.3f} Å apart"
        )
    atoms = AseAtomsAdaptor.get_atoms(structure.get_primitive_structure())
    reps = repeats(atoms.cell.lengths(), min_length)
    return atoms.repeat(reps)


def _clear(framework: Atoms, guest: Atoms) -> bool:
    _, d = get_distances(
        guest.positions, framework.positions, cell=framework.cell, pbc=True
    )
    return bool(d.min() >= MIN_GUEST_DISTANCE)


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def open_metals(framework: Atoms) -> list[tuple[int, np.ndarray]]:
    """The open metal sites of a framework: ``(atom index, outward unit
    vector)`` for every metal with 1-5 neighbours within 2.6 Å whose
    neighbours leave a side open (the vector points away from their
    centroid)."""
    out = []
    for i, symbol in enumerate(framework.get_chemical_symbols()):
        if not Element(symbol).is_metal:
            continue
        vec, d = get_distances(
            framework.positions[i], framework.positions, cell=framework.cell, pbc=True
        )
        near = np.where((d[0] > 0.1) & (d[0] < 2.6))[0]
        if len(near) == 0 or len(near) >= 6:
            continue  # not open
        direction = -vec[0, near].mean(axis=0)
        if np.linalg.norm(direction) < 0.3:
            continue
        out.append((i, direction / np.linalg.norm(direction)))
    return out


def bound_at(ads, metal: np.ndarray, direction: np.ndarray) -> Atoms:
    """The guest bound end-on at a metal position: its binding atom
    :data:`OPEN_METAL_DISTANCE` Å out along ``direction``."""
    guest = oriented(ads, direction)
    guest.positions += metal + OPEN_METAL_DISTANCE * direction
    return guest


def guest_placements(
    framework: Atoms,
    ads: Adsorbate,
    n_random: int = 4,
    open_metal_sites: bool = True,
    max_metal_sites: int = 2,
    seed: int = 0,
    max_tries: int = 2000,
) -> list[tuple[str, Atoms]]:
    """Candidate placements of a guest: at open metal sites, and random in pores.

    Open metal sites (:func:`open_metals`): the binding atom 2.3 Å from a
    metal, opposite the centroid of its neighbours.  Random: uniform
    positions and orientations, rejected when any guest atom is within
    :data:`MIN_GUEST_DISTANCE` of the framework.  Returns ``(site label,
    guest atoms)`` pairs.
    """
    rng = np.random.default_rng(seed)
    out: list[tuple[str, Atoms]] = []
    if open_metal_sites:
        for i, direction in open_metals(framework)[:max_metal_sites]:
            guest = bound_at(ads, framework.positions[i], direction)
            out.append(("open-metal", guest))
    tries = 0
    while sum(p[0] == "random" for p in out) < n_random and tries < max_tries:
        tries += 1
        guest = ads.atoms.copy()
        guest.positions -= guest.positions.mean(axis=0)
        guest.positions = guest.positions @ _random_rotation(rng).T
        guest.positions += rng.random(3) @ framework.cell.array
        if _clear(framework, guest):
            out.append(("random", guest))
    return out
