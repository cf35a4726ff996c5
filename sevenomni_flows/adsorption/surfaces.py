"""Slabs, adsorption sites and placements on metal surfaces (pymatgen)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii
from pymatgen.core import Composition, Element, Structure
from pymatgen.core.surface import (
    Slab,
    SlabGenerator,
    get_symmetrically_equivalent_miller_indices,
)
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..dimensionality import check_bulk
from .adsorbates import Adsorbate, oriented
from .slab_protocol import SlabProtocol

__all__ = [
    "Site",
    "build_slab",
    "build_slabs",
    "canonical_miller",
    "check_metal",
    "find_sites",
    "image_distance",
    "place",
    "primitive_surface",
    "random_sites",
]


class Site(dict):
    """An adsorption site: ``label`` and in-plane ``position`` (Å, Cartesian)."""


def check_metal(structure: Structure, label: str) -> None:
    """Raise ValueError unless ``structure`` is a periodic bulk of metals only."""
    check_bulk(structure, label, "the surface adsorption flow")
    nonmetals = sorted(
        {str(el) for el in structure.composition if not Element(el).is_metal}
    )
    if nonmetals:
        raise ValueError(
            f"{label}: {structure.composition.reduced_formula} is not a metal "
            f"(non-metallic elements: {', '.join(nonmetals)}); the surface "
            "adsorption flow needs a metallic bulk"
        )


def canonical_miller(conventional: Structure, miller) -> tuple[int, int, int]:
    """The representative of the facets equivalent to ``miller``.

    Equivalent under the point group of ``conventional`` (the conventional
    standard cell the indices refer to) or by turning the slab over (hkl to
    -h-k-l, the other face of the same slab); the largest index tuple of the
    family, so it does not depend on which member was asked for.
    """
    family = get_symmetrically_equivalent_miller_indices(
        conventional, tuple(int(i) for i in miller), return_hkil=False
    )
    family = [tuple(int(i) for i in hkl) for hkl in family]
    return max(family + [tuple(-i for i in hkl) for hkl in family])


def build_slab(
    bulk: Structure,
    miller: tuple[int, int, int],
    protocol: SlabProtocol | str | dict = "converged",
) -> Atoms:
    """A slab of ``bulk`` built by ``protocol``, its bottom layers fixed.

    One termination of :func:`build_slabs`, chosen by a fixed rule so that
    float-level noise in ``bulk`` cannot change it: symmetric slabs first,
    then the densest top layer (most atoms), then the canonical order.
    Elemental fcc and bcc metals have one termination per facet.
    """
    slabs = build_slabs(bulk, miller, protocol)
    return min(
        slabs,
        key=lambda a: (
            not a.info["slab"]["termination"]["symmetric"],
            -a.info["slab"]["surface_atoms"],
        ),
    )


def build_slabs(
    bulk: Structure,
    miller: tuple[int, int, int],
    protocol: SlabProtocol | str | dict = "converged",
) -> list[Atoms]:
    """Every termination of the (hkl) slab of ``bulk``, in a canonical order.

    ``miller`` refers to the conventional standard cell of ``bulk``.  Each
    of pymatgen's terminations is turned ``c`` normal to the surface, cut
    to the protocol's layers (or thickness), with the vacuum above it and
    the lateral supercell applied, its bottom layers fixed.  What was built
    is in ``atoms.info["slab"]``: layers, fixed_layers, supercell,
    surface_atoms (atoms in the top layer), coverage (ML, one adsorbate per
    cell), thickness and vacuum (Å), image_distance (Å, the shortest
    in-plane periodic image distance), the protocol, and ``termination``:
    pymatgen's ``shift`` (fraction of the oriented cell, rounded to 1e-4;
    it depends on the cell's origin), ``spacing`` (Å, between the top two
    layers), the ``top`` and ``bottom`` layer formulas, ``symmetric`` (the two faces
    are equivalent, pymatgen's ``Slab.is_symmetric``), ``polar`` (a dipole
    across the slab with guessed oxidation states, ``Slab.is_polar``; None
    if no guess) and ``stoichiometric``.  The order sorts by the face
    formulas, then the spacing (to 0.01 Å), so neither float noise in
    ``bulk`` nor its cell's origin or orientation changes it.
    """
    protocol = SlabProtocol.model_validate(protocol)
    hkl = "".join(map(str, miller))
    formula = bulk.composition.reduced_formula
    check_bulk(bulk, None, f"the ({hkl}) slab")
    # Miller indices refer to the conventional standard cell, as users expect
    conventional = SpacegroupAnalyzer(bulk).get_conventional_standard_structure()
    exact = protocol.layers is not None
    gen = SlabGenerator(
        conventional,
        tuple(miller),
        protocol.layers + 1 if exact else protocol.min_thickness,
        protocol.vacuum,
        center_slab=True,
        in_unit_planes=exact,  # each (hkl) plane holds at least one layer
        primitive=True,
        lll_reduce=True,
    )
    slabs = gen.get_slabs()
    if not slabs:
        raise ValueError(f"{formula} ({hkl}): no slab could be built")
    built = [_terminated(slab, protocol, f"{formula} ({hkl})") for slab in slabs]
    for atoms in built:
        atoms.info["miller"] = list(miller)
    return sorted(built, key=_canonical)


def _canonical(atoms: Atoms) -> tuple:
    t = atoms.info["slab"]["termination"]
    return (t["top"], t["bottom"], round(t["spacing"], 2), len(atoms), t["shift"])


def _terminated(slab: Slab, protocol: SlabProtocol, what: str) -> Atoms:
    """One pymatgen termination cut and dressed by ``protocol``."""
    from ase.constraints import FixAtoms

    exact = protocol.layers is not None
    atoms = primitive_surface(AseAtomsAdaptor.get_atoms(slab.get_orthogonal_c_slab()))
    layers = _layers(atoms, LAYER_TOLERANCE)[::-1]  # bottom first
    if exact:
        if len(layers) < protocol.layers:
            raise ValueError(
                f"{what}: only {len(layers)} layers could be cut, "
                f"{protocol.layers} asked for"
            )
        keep = np.concatenate(layers[len(layers) - protocol.layers :])
        atoms = atoms[np.sort(keep)]
        layers = _layers(atoms, LAYER_TOLERANCE)[::-1]
    n_fixed = protocol.n_fixed(len(layers), what)
    fixed = np.zeros(len(atoms), dtype=bool)
    for layer in layers[:n_fixed]:
        fixed[layer] = True
    z = atoms.positions[:, 2]
    thickness = float(z.max() - z.min())
    atoms.positions[:, 2] -= z.min()
    cell = atoms.cell.array.copy()
    cell[2] = [0.0, 0.0, thickness + protocol.vacuum]
    atoms.set_cell(cell, scale_atoms=False)
    termination = _faces(atoms, layers, slab)
    reps = _supercell(cell[:2, :2], protocol)
    surface_atoms = len(layers[-1]) * reps[0] * reps[1]
    atoms.set_constraint(FixAtoms(mask=fixed))
    atoms = atoms.repeat((*reps, 1))
    atoms.pbc = [True, True, True]
    atoms.info["slab"] = {
        "layers": len(layers),
        "fixed_layers": n_fixed,
        "supercell": list(reps),
        "surface_atoms": surface_atoms,
        "coverage": 1.0 / surface_atoms,
        "thickness": thickness,
        "vacuum": protocol.vacuum,
        "image_distance": image_distance(atoms.cell.array[:2, :2]),
        "protocol": protocol.model_dump(exclude_none=True),
        "termination": termination,
    }
    return atoms


def _faces(atoms: Atoms, layers: list[np.ndarray], slab: Slab) -> dict:
    """The termination of a cut slab (1x1): its faces, symmetry and polarity."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    cut = Slab(
        structure.lattice,
        structure.species,
        structure.frac_coords,
        slab.miller_index,
        slab.oriented_unit_cell,
        slab.shift,
        slab.scale_factor,
    )
    bulk = slab.oriented_unit_cell.composition.reduced_composition
    symmetric = cut.is_symmetric()
    polar = False  # a symmetric slab has no dipole across it
    if not symmetric:
        try:
            charged = cut.copy()
            charged.add_oxidation_state_by_guess()
            polar = charged.is_polar()
        except Exception:  # no oxidation states could be guessed
            polar = None
    z = [atoms.positions[layer, 2].mean() for layer in layers[-2:]]
    return {
        "shift": round(float(slab.shift), 4),
        "spacing": float(z[-1] - z[0]),
        "top": _formula(atoms[layers[-1]]),
        "bottom": _formula(atoms[layers[0]]),
        "symmetric": symmetric,
        "polar": polar,
        "stoichiometric": cut.composition.reduced_composition == bulk,
        "formula": cut.composition.formula.replace(" ", ""),
    }


def _formula(atoms: Atoms) -> str:
    return Composition(atoms.get_chemical_formula()).formula.replace(" ", "")


#: Atoms whose heights differ by less than this (Å) share a layer.
LAYER_TOLERANCE = 0.3


def primitive_surface(slab: Atoms, tol: float = 0.05) -> Atoms:
    """The same slab on its primitive in-plane cell (``c`` normal to the surface).

    pymatgen's slab cells are often supercells in-plane (fcc(111) comes 2x2),
    which would make ``supercell: [3, 3]`` mean something else than the
    p(3x3) a user states.  The in-plane translations that map the slab onto
    itself (atoms within ``tol`` Å) are found by trial; their two shortest
    independent ones (the successive minima, which in two dimensions always
    form a basis) span the new cell, which is thus also reduced.
    """
    cell = slab.cell.array
    frac = slab.get_scaled_positions()

    def offsets(f: np.ndarray) -> np.ndarray:
        """Cartesian minimum-image in-plane offsets, (n, 3)."""
        d = f.copy()
        d[..., :2] -= np.round(d[..., :2])
        return d @ cell

    def maps(t: np.ndarray) -> bool:
        moved = frac + t
        for z in np.unique(slab.numbers):
            mine = slab.numbers == z
            d = offsets(moved[mine][:, None, :] - frac[mine][None, :, :])
            if np.linalg.norm(d, axis=2).min(axis=1).max() > tol:
                return False
        return True

    same = (slab.numbers == slab.numbers[0]) & (
        np.abs(slab.positions[:, 2] - slab.positions[0, 2]) < tol
    )
    trial = (frac[same] - frac[0]) % 1.0
    trial[:, 2] = 0.0
    valid = [t for t in trial if maps(t)]
    vectors = [
        (t[:2] + np.array([i, j])) @ cell[:2, :2]
        for t in valid
        for i in range(-2, 3)
        for j in range(-2, 3)
    ]
    vectors = sorted(
        (v for v in vectors if np.linalg.norm(v) > tol), key=np.linalg.norm
    )
    first = vectors[0]
    second = next(v for v in vectors if abs(_cross(first, v)) > 1e-3 * np.dot(v, v))
    if _cross(first, second) < 0:
        second = -second
    new = cell.copy()
    new[0, :2], new[1, :2] = first, second
    new[:2, 2] = 0.0
    reduced = slab.copy()
    reduced.set_cell(new, scale_atoms=False)
    reduced.wrap()
    cell = new
    frac = reduced.get_scaled_positions()
    keep: list[int] = []
    for i in range(len(reduced)):
        d = offsets(frac[keep] - frac[i]) if keep else np.zeros((0, 3))
        twins = np.linalg.norm(d, axis=1) < tol
        if not (twins & (reduced.numbers[keep] == reduced.numbers[i])).any():
            keep.append(i)
    return reduced[keep]


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    """The z component of the cross product of two in-plane vectors."""
    return float(a[0] * b[1] - a[1] * b[0])


def image_distance(vectors: np.ndarray) -> float:
    """Shortest in-plane periodic image distance (Å) of two 2D lattice vectors."""
    vectors = np.asarray(vectors, float)
    return min(
        float(np.linalg.norm(i * vectors[0] + j * vectors[1]))
        for i in range(-3, 4)
        for j in range(-3, 4)
        if (i, j) != (0, 0)
    )


def _supercell(vectors: np.ndarray, protocol: SlabProtocol) -> tuple[int, int]:
    """The protocol's supercell, or the smallest one reaching ``min_lateral``."""
    if protocol.supercell is not None:
        return tuple(protocol.supercell)
    fits = [
        (n * m, abs(n - m), n, m)
        for n in range(1, 16)
        for m in range(1, 16)
        if image_distance(vectors * [[n], [m]]) >= protocol.min_lateral - 1e-6
    ]
    if not fits:
        raise ValueError(f"no supercell up to 15x15 reaches {protocol.min_lateral} Å")
    return min(fits)[2:]


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
    from pymatgen.analysis.adsorption import AdsorbateSiteFinder

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
