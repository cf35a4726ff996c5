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

    The slab is pymatgen's first termination, with ``c`` normal to the
    surface, repeated laterally until both in-plane vectors are at least
    ``min_lateral`` Å; atoms in the bottom ``fix_fraction`` of its thickness
    are fixed.
    """
    gen = SlabGenerator(
        bulk,
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


def _lateral_distance(
    atoms: Atoms, point: np.ndarray, indices: np.ndarray
) -> np.ndarray:
    cell = atoms.cell.array
    d = atoms.positions[indices, :2] - point[:2]
    best = np.full(len(indices), np.inf)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            shift = (i * cell[0] + j * cell[1])[:2]
            best = np.minimum(best, np.linalg.norm(d + shift, axis=1))
    return best


def find_sites(slab: Atoms, symm_reduce: float = 0.01) -> list[Site]:
    """Unique sites of the top surface: ontop, bridge, fcc/hcp or four-fold hollow."""
    struct = AseAtomsAdaptor.get_structure(slab)
    finder = AdsorbateSiteFinder(struct, height=1.0)
    found = finder.find_adsorption_sites(distance=0.0, symm_reduce=symm_reduce)
    layers = _layers(slab)
    top = layers[0]
    second = layers[1] if len(layers) > 1 else np.array([], dtype=int)
    sites = []
    for kind in ("ontop", "bridge", "hollow"):
        for pos in found.get(kind, []):
            label = kind
            if kind == "hollow":
                lateral = _lateral_distance(slab, pos, top)
                n_top = int(np.sum(lateral < 1.15 * lateral.min()))
                if n_top >= 4:
                    label = "hollow4"
                elif len(second) and _lateral_distance(slab, pos, second).min() < 0.5:
                    label = "hcp"
                else:
                    label = "fcc"
            sites.append(Site(label=label, position=np.asarray(pos, float).tolist()))
    return sites


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
