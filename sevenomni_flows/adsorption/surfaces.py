"""Slabs, adsorption sites and placements on metal surfaces (pymatgen)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.data import atomic_numbers, covalent_radii
from pymatgen.analysis.adsorption import AdsorbateSiteFinder
from pymatgen.core import Element, Structure
from pymatgen.core.surface import SlabGenerator
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from .adsorbates import Adsorbate, oriented

__all__ = [
    "Site",
    "build_slab",
    "check_metal",
    "find_sites",
    "place",
    "random_sites",
]


class Site(dict):
    """An adsorption site: ``label`` and in-plane ``position`` (Å, Cartesian)."""


def check_metal(structure: Structure, label: str) -> None:
    """Raise ValueError unless ``structure`` is a periodic bulk of metals only."""
    if not isinstance(structure, Structure):
        raise ValueError(f"{label}: needs a periodic bulk structure, got a molecule")
    nonmetals = sorted(
        {str(el) for el in structure.composition if not Element(el).is_metal}
    )
    if nonmetals:
        raise ValueError(
            f"{label}: {structure.composition.reduced_formula} is not a metal "
            f"(non-metallic elements: {', '.join(nonmetals)}); the surface "
            "adsorption flow needs a metallic bulk"
        )


def build_slab(
    bulk: Structure,
    miller: tuple[int, int, int],
    min_slab_size: float = 7.0,
    min_vacuum: float = 12.0,
    min_lateral: float = 7.0,
    fix_fraction: float = 0.5,
) -> Atoms:
    """A slab of ``bulk`` with the bottom atoms fixed (``FixAtoms``).

    ``miller`` refers to the conventional standard cell of ``bulk``.  The
    slab is pymatgen's first termination, with ``c`` normal to the
    surface, repeated laterally until both in-plane vectors are at least
    ``min_lateral`` Å; atoms in the bottom ``fix_fraction`` of its thickness
    are fixed.
    """
    # Miller indices refer to the conventional standard cell, as users expect
    conventional = SpacegroupAnalyzer(bulk).get_conventional_standard_structure()
    gen = SlabGenerator(
        conventional,
        tuple(miller),
        min_slab_size,
        min_vacuum,
        center_slab=False,
        primitive=True,
        lll_reduce=True,
    )
    slabs = gen.get_slabs()
    if not slabs:
        raise ValueError(f"no slab could be built for {tuple(miller)}")
    slab = slabs[0].get_orthogonal_c_slab()
    a, b = slab.lattice.abc[:2]
    reps = [
        max(1, int(np.ceil(min_lateral / a))),
        max(1, int(np.ceil(min_lateral / b))),
        1,
    ]
    atoms = AseAtomsAdaptor.get_atoms(slab.copy())
    atoms = atoms.repeat(reps)
    atoms.pbc = [True, True, True]
    z = atoms.positions[:, 2]
    cut = z.min() + fix_fraction * (z.max() - z.min())
    atoms.set_constraint(FixAtoms(mask=z < cut - 1e-3))
    atoms.info["miller"] = list(miller)
    return atoms


def _layers(atoms: Atoms, tol: float = 0.5) -> list[np.ndarray]:
    z = atoms.positions[:, 2]
    order = np.argsort(-z)
    layers, current = [], [order[0]]
    for i in order[1:]:
        if z[current[0]] - z[i] < tol:
            current.append(i)
        else:
            layers.append(np.array(current))
            current = [i]
    layers.append(np.array(current))
    return layers


def _lateral_vectors(
    atoms: Atoms, point: np.ndarray, indices: np.ndarray
) -> np.ndarray:
    """Minimum-image in-plane vectors from ``point`` to the atoms ``indices``."""
    cell = atoms.cell.array
    d = atoms.positions[indices, :2] - np.asarray(point)[:2]
    best = d.copy()
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            cand = d + (i * cell[0] + j * cell[1])[:2]
            closer = np.linalg.norm(cand, axis=1) < np.linalg.norm(best, axis=1)
            best[closer] = cand[closer]
    return best


def _lateral_distance(
    atoms: Atoms, point: np.ndarray, indices: np.ndarray
) -> np.ndarray:
    return np.linalg.norm(_lateral_vectors(atoms, point, indices), axis=1)


def _lateral_distance_point(atoms: Atoms, p: list, q: np.ndarray) -> float:
    cell = atoms.cell.array
    d = np.asarray(p)[:2] - q[:2]
    return min(
        np.linalg.norm(d + (i * cell[0] + j * cell[1])[:2])
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
    )


def find_sites(slab: Atoms, symm_reduce: float = 0.01) -> list[Site]:
    """Unique sites of the top surface: ontop, bridge, fcc/hcp or four-fold hollow.

    Hollows found by pymatgen's AdsorbateSiteFinder are snapped to the centre
    of their three (or, on square lattices, four) nearest surface atoms.
    """
    struct = AseAtomsAdaptor.get_structure(slab)
    finder = AdsorbateSiteFinder(struct, height=1.0)
    found = finder.find_adsorption_sites(
        distance=0.0, symm_reduce=symm_reduce, no_obtuse_hollow=False
    )
    layers = _layers(slab)
    top = layers[0]
    second = layers[1] if len(layers) > 1 else np.array([], dtype=int)
    z_top = slab.positions[top, 2].max()
    sites: list[Site] = []
    for kind in ("ontop", "bridge", "hollow"):
        for pos in found.get(kind, []):
            pos = np.asarray(pos, float)
            vec = _lateral_vectors(slab, pos, top)
            order = np.argsort(np.linalg.norm(vec, axis=1))
            dist = np.linalg.norm(vec[order], axis=1)
            # classify by geometry: pymatgen calls the centre of a square
            # (the middle of its diagonal) a bridge
            if dist[0] < 0.3:
                label, centre = "ontop", pos[:2] + vec[order[0]]
            elif kind == "bridge" and not (len(dist) > 3 and dist[3] < 1.1 * dist[0]):
                label, centre = "bridge", pos[:2]
            else:
                four = len(dist) > 3 and dist[3] < 1.35 * dist[2]
                n = 4 if four else 3
                centre = pos[:2] + vec[order[:n]].mean(axis=0)
                point = np.array([centre[0], centre[1], z_top])
                if four:
                    label = "hollow4"
                elif len(second) and _lateral_distance(slab, point, second).min() < 0.5:
                    label = "hcp"
                else:
                    label = "fcc"
            pos = np.array([centre[0], centre[1], z_top])
            if any(
                s["label"] == label
                and _lateral_distance_point(slab, s["position"], pos) < 0.3
                for s in sites
            ):
                continue
            sites.append(Site(label=label, position=pos.tolist()))
    # snapping can make symmetry-equivalent copies: reduce again per label
    reduced: list[Site] = []
    for label in dict.fromkeys(s["label"] for s in sites):
        coords = [np.asarray(s["position"]) for s in sites if s["label"] == label]
        up = np.array([0.0, 0.0, 1.0])  # just above the surface
        for c in finder.symm_reduce([c + up for c in coords], threshold=symm_reduce):
            reduced.append(Site(label=label, position=(np.asarray(c) - up).tolist()))
    return reduced


def random_sites(slab: Atoms, n: int, seed: int = 0) -> list[Site]:
    """``n`` random in-plane positions on the top surface."""
    rng = np.random.default_rng(seed)
    cell = slab.cell.array
    top_z = _layers(slab)[0]
    z = slab.positions[top_z, 2].mean()
    out = []
    for _ in range(n):
        f = rng.random(2)
        xy = f[0] * cell[0][:2] + f[1] * cell[1][:2]
        out.append(Site(label="random", position=[xy[0], xy[1], z]))
    return out


def place(slab: Atoms, ads: Adsorbate, site: Site) -> tuple[Atoms, np.ndarray]:
    """Slab with the adsorbate's binding atom above ``site``, bonded length away.

    The height puts the binding atom at 0.95 times the sum of covalent radii
    from its nearest surface atom.  Returns the structure and the indices of
    the adsorbate atoms.
    """
    top = _layers(slab)[0]
    point = np.asarray(site["position"], float)
    z_top = slab.positions[top, 2].max()
    lateral = _lateral_distance(slab, point, top)
    nearest = top[int(np.argmin(lateral))]
    z_bind = atomic_numbers[ads.atoms[ads.binding].symbol]
    bond = 0.95 * (covalent_radii[z_bind] + covalent_radii[slab.numbers[nearest]])
    height = np.sqrt(max(bond**2 - lateral.min() ** 2, 0.8**2))
    mol = oriented(ads, np.array([0.0, 0.0, 1.0]))
    mol.positions += [point[0], point[1], z_top + height]
    combined = slab.copy() + mol
    combined.set_constraint(slab.constraints[0].copy() if slab.constraints else [])
    return combined, np.arange(len(slab), len(combined))
