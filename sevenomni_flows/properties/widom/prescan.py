"""Model-free search for a guest's strong sites in a framework.

Two sources of sites, neither calling the model:

- **open metal sites**: a metal with fewer than six neighbours within
  2.6 Å; the guest's binding atom 2.3 Å from it, opposite the centroid of
  its neighbours (as :func:`~sevenomni_flows.adsorption.mofs.guest_placements`
  places guests);
- **a Lennard-Jones pre-scan**: uniform random poses scored with UFF
  Lennard-Jones parameters (Rappé et al., JACS 114, 10024 (1992);
  Lorentz-Berthelot mixing, 8 Å cut-off), the lowest distinct poses kept.

The sites only shape the biased proposal of
:mod:`~sevenomni_flows.properties.widom.sampling`; its weights keep the estimate
exact whatever they are, so the rough parameters here cost variance at
worst, never bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from ...adsorption.adsorbates import Adsorbate, oriented
from ...adsorption.mofs import bound_at, open_metals
from .averages import overlapping, periodic_images, wrapped

__all__ = [
    "UFF",
    "Sites",
    "find_sites",
    "lennard_jones",
    "linear_axis",
    "open_metal_poses",
    "periodic_distance",
    "symmetric_copies",
]

#: UFF Lennard-Jones parameters: (x_i, the well distance, Å; D_i, kcal/mol).
UFF = {
    "H": (2.886, 0.044),
    "B": (4.083, 0.180),
    "C": (3.851, 0.105),
    "N": (3.660, 0.069),
    "O": (3.500, 0.060),
    "F": (3.364, 0.050),
    "Mg": (3.021, 0.111),
    "Al": (4.499, 0.505),
    "Si": (4.295, 0.402),
    "P": (4.147, 0.305),
    "S": (4.035, 0.274),
    "Cl": (3.947, 0.227),
    "Ca": (3.399, 0.238),
    "Ti": (3.175, 0.017),
    "V": (3.144, 0.016),
    "Cr": (3.023, 0.015),
    "Mn": (2.961, 0.013),
    "Fe": (2.912, 0.013),
    "Co": (2.872, 0.014),
    "Ni": (2.834, 0.015),
    "Cu": (3.495, 0.005),
    "Zn": (2.763, 0.124),
    "Br": (4.189, 0.251),
    "Zr": (3.124, 0.069),
    "Cd": (2.848, 0.228),
    "I": (4.500, 0.339),
}
#: Parameters of elements missing from :data:`UFF`.
UFF_DEFAULT = (3.5, 0.05)
KCAL_TO_EV = units.kcal / units.mol
#: Lennard-Jones cut-off, Å.
CUTOFF = 8.0


@dataclass
class Sites:
    """Strong-site poses of a guest: centres of mass, axes and labels.

    Attributes
    ----------
    centres : numpy.ndarray
        ``(K, 3)`` Å.
    axes : numpy.ndarray or None
        ``(K, 3)`` unit axes for a linear guest, else None.
    labels : list of str
        ``open-metal`` or ``lj``, per site.
    poses : numpy.ndarray
        ``(K, m, 3)`` the guest's atoms at each site, Å (starts for a
        relaxation with the model).
    energies : numpy.ndarray
        Lennard-Jones energy of each site pose, eV.
    overlap_fraction : float
        Share of the uniform pre-scan poses inside the hard core.
    """

    centres: np.ndarray
    axes: np.ndarray | None
    labels: list[str]
    poses: np.ndarray
    energies: np.ndarray
    overlap_fraction: float


def linear_axis(guest: Atoms) -> np.ndarray | None:
    """The unit axis of a linear guest of several atoms, else None."""
    centred = guest.positions - guest.positions.mean(axis=0)
    if len(guest) < 2:
        return None
    _, s, vt = np.linalg.svd(centred)
    return vt[0] if s[1] < 1e-3 * max(s[0], 1e-12) else None


def lennard_jones(framework: Atoms, guest_numbers, placed: np.ndarray) -> np.ndarray:
    """UFF Lennard-Jones energy (eV) of each placement ``(n, m, 3)``."""
    cell = framework.cell.array
    images, owner = periodic_images(cell, framework.positions)
    host = _parameters(framework.get_chemical_symbols())[owner]
    symbols = [Atoms(numbers=[z]).get_chemical_symbols()[0] for z in guest_numbers]
    mine = np.tile(_parameters(symbols), (len(placed), 1))
    inside = wrapped(cell, placed)
    pairs = cKDTree(inside).sparse_distance_matrix(
        cKDTree(images), CUTOFF, output_type="coo_matrix"
    )
    i, j, r = pairs.row, pairs.col, np.maximum(pairs.data, 0.5)
    sigma = 0.5 * (mine[i, 0] + host[j, 0]) / 2 ** (1 / 6)
    eps = np.sqrt(mine[i, 1] * host[j, 1]) * KCAL_TO_EV
    sr6 = (sigma / r) ** 6
    per_atom = np.bincount(i, 4 * eps * (sr6**2 - sr6), minlength=len(inside))
    return per_atom.reshape(len(placed), -1).sum(axis=1)


def _parameters(symbols: list[str]) -> np.ndarray:
    return np.array([UFF.get(s, UFF_DEFAULT) for s in symbols])


def open_metal_poses(framework: Atoms, ads: Adsorbate, guest: Atoms) -> list:
    """``(centre of mass, axis)`` of the guest bound end-on at every open metal.

    ``guest`` is the rigid guest (its masses give the centre of mass); the
    axis is the unit vector from the metal outwards (None for a guest of one
    atom).
    """
    out = []
    for i, direction in open_metals(framework):
        placed = bound_at(ads, framework.positions[i], direction)
        centre = (placed.positions * guest.get_masses()[:, None]).sum(axis=0)
        out.append((centre / guest.get_masses().sum(), direction))
    return out


def find_sites(
    framework: Atoms,
    ads: Adsorbate,
    guest: Atoms,
    rng: np.random.Generator,
    scan: int = 4000,
    keep: int = 8,
    separation: float = 1.5,
    hard_core: float = 0.65,
) -> Sites:
    """Open-metal poses and the ``keep`` lowest distinct Lennard-Jones poses.

    Parameters
    ----------
    framework, ads, guest
        The framework, the guest's adsorbate entry, and the rigid guest.
    rng : numpy.random.Generator
        Draws the pre-scan poses.
    scan : int
        Uniform poses scored.
    keep : int
        Lennard-Jones sites kept at most, each at least ``separation`` Å
        from the others (periodic).
    hard_core : float
        Overlap cut (as in
        :func:`~sevenomni_flows.properties.widom.averages.overlapping`).
    """
    centred = guest.positions - guest.get_center_of_mass()
    body = linear_axis(guest)
    cell = framework.cell.array
    centres = rng.random((scan, 3)) @ cell
    rotations = Rotation.random(scan, random_state=rng).as_matrix()
    placed = np.einsum("nij,aj->nai", rotations, centred) + centres[:, None]
    over = overlapping(framework, guest.numbers, placed, hard_core)
    energy = np.full(scan, np.inf)
    if (~over).any():
        energy[~over] = lennard_jones(framework, guest.numbers, placed[~over])
    chosen: list[int] = []
    for i in np.argsort(energy):
        if len(chosen) >= keep or not np.isfinite(energy[i]) or energy[i] >= 0:
            break
        if all(
            periodic_distance(cell, centres[i], centres[j]) >= separation
            for j in chosen
        ):
            chosen.append(i)
    metal = open_metal_poses(framework, ads, guest)
    site_centres = [c for c, _ in metal] + [centres[i] for i in chosen]
    labels = ["open-metal"] * len(metal) + ["lj"] * len(chosen)
    axes = None
    if body is not None:
        axes = [a for _, a in metal] + [rotations[i] @ body for i in chosen]
        axes = np.array(axes).reshape(-1, 3)
    metal_poses = [_metal_pose(ads, guest, centred, c, a, body) for c, a in metal]
    poses = np.array(metal_poses + [placed[i] for i in chosen])
    poses = poses.reshape(-1, len(guest), 3)
    metal_energy = (
        lennard_jones(framework, guest.numbers, poses[: len(metal)])
        if metal
        else np.zeros(0)
    )
    return Sites(
        centres=np.array(site_centres).reshape(-1, 3),
        axes=axes,
        labels=labels,
        poses=poses,
        energies=np.concatenate([metal_energy, energy[chosen]]),
        overlap_fraction=float(over.mean()),
    )


def _metal_pose(ads, guest, centred, centre, axis, body) -> np.ndarray:
    """The rigid guest at an open metal: end-on along ``axis`` when linear."""
    if body is None:  # the adsorbate's own shape, bound through its atom
        placed = oriented(ads, axis).positions
        return placed - placed.mean(axis=0) + centre
    rotation, _ = Rotation.align_vectors([axis], [body])
    return rotation.apply(centred) + centre


def periodic_distance(cell: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance between ``a`` and ``b`` (Å) to the nearest periodic image."""
    frac = np.linalg.solve(cell.T, a - b)
    frac -= np.round(frac)
    return float(np.linalg.norm(frac @ cell))


def symmetric_copies(framework: Atoms):
    """A function copying site poses by every symmetry operation of the crystal.

    A site the model found at one open metal is then proposed at all the
    equivalent ones.  The operations are those of the primitive cell (a
    supercell's own lattice can hide most of them: Mg-MOF-74 repeated
    along one axis keeps 4 of its 12), each combined with every primitive
    translation inside the framework's cell.  The returned function takes
    centres ``(K, 3)`` and axes ``(K, 3)`` (or None) and gives the centres
    ``(K·n_copies, 3)``, wrapped into the cell, and the axes turned with them
    (or None).  If spglib finds no symmetry, the poses are returned as they
    are.
    """
    cell = framework.cell.array
    try:
        primitive = AseAtomsAdaptor.get_structure(framework).get_primitive_structure()
        ops = SpacegroupAnalyzer(primitive, symprec=0.1).get_symmetry_operations(
            cartesian=True
        )
        shifts = _translations(primitive.lattice.matrix, cell)
    except Exception:  # spglib fails on some cells: the sites as found
        ops, shifts = [], np.zeros((1, 3))

    def copies(centres: np.ndarray, axes: np.ndarray | None):
        if not ops:
            return centres, axes
        out_c, out_a = [], []
        for op in ops:
            turned = centres @ op.rotation_matrix.T + op.translation_vector
            for shift in shifts:
                out_c.append(wrapped(cell, turned + shift))
                if axes is not None:
                    out_a.append(axes @ op.rotation_matrix.T)
        return (
            np.concatenate(out_c).reshape(-1, 3),
            None if axes is None else np.concatenate(out_a).reshape(-1, 3),
        )

    return copies


def _translations(primitive: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """The primitive lattice vectors (Å) that are distinct within ``cell``."""
    index = round(abs(np.linalg.det(cell) / np.linalg.det(primitive)))
    reach = int(np.ceil(np.abs(cell @ np.linalg.inv(primitive)).sum(axis=0).max()))
    steps = np.arange(-reach, reach + 1)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1)
    vectors = grid.reshape(-1, 3) @ primitive
    frac = np.linalg.solve(cell.T, vectors.T).T
    frac = np.round(frac - np.floor(frac + 1e-6), 6) % 1.0
    _, first = np.unique(frac, axis=0, return_index=True)
    if len(first) != index:
        raise ValueError(f"{len(first)} primitive translations in a cell of {index}")
    return vectors[np.sort(first)]
