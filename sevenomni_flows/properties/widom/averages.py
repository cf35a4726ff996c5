"""Widom test-particle insertion: Henry coefficients and heats of adsorption.

A rigid guest is inserted at uniformly random positions and orientations
into a rigid framework; each insertion's interaction energy

    ΔE = E(framework + guest) − E(framework) − E(guest)

enters Boltzmann averages at each temperature T (β = 1/k_B T):

    K_H  = ⟨exp(−βΔE)⟩ / (ρ_f R T)                         mol kg⁻¹ Pa⁻¹
    Q_st = R T − ⟨ΔE exp(−βΔE)⟩ / ⟨exp(−βΔE)⟩              kJ/mol

(Vlugt, García-Pérez, Dubbeldam, Ban and Calero, J. Chem. Theory Comput. 4,
1107 (2008)), ρ_f being the framework density.  Q_st is the isosteric heat
at infinite dilution, positive when the guest binds.

Insertions may also be drawn from a biased proposal q and weighted by
w = p_uniform/q (:mod:`~sevenomni_flows.properties.widom.sampling`); every average
below is then over w·exp(−βΔE), which is exact whatever q.

Two rules keep a few insertions from ruining the averages:

- **overlap**: a guest atom closer to a framework atom than
  :data:`HARD_CORE` times the sum of their covalent radii has zero weight,
  without a model call (its true energy is strongly repulsive; a model far
  from its data may say otherwise);
- **unphysical**: an insertion with ΔE below a floor (set by the caller:
  the Widom Maker puts it 10 kT below the lowest site relaxed with the
  model) is excluded and counted: it is an artefact of the model, whose
  weight exp(−βΔE) would otherwise dominate everything.

Errors are Poisson-bootstrap standard errors over the insertions
(:data:`BOOTSTRAP` resamples, seeded: deterministic).  A bootstrap cannot
see what the sample missed, so each temperature also reports the number of
effective insertions (Kish's (Σu)²/Σu² of the weights u = w·exp(−βΔE)):
when a handful of insertions carry the whole average (fewer than
:data:`MIN_EFFECTIVE`), K_H and Q_st are not converged, whatever the error
says.  :mod:`~sevenomni_flows.properties.widom.sampling_rounds` grows a sample
until they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

__all__ = [
    "BOOTSTRAP",
    "HARD_CORE",
    "MIN_EFFECTIVE",
    "WidomAverages",
    "averages",
    "framework_density",
    "insertions",
    "overlapping",
    "periodic_images",
    "wrapped",
]

#: Overlap when a distance is below this fraction of the covalent radii sum.
HARD_CORE = 0.65
#: Bootstrap resamples for the statistical errors.
BOOTSTRAP = 200
#: Fewer effective insertions than this: the averages are not converged.
MIN_EFFECTIVE = 20
#: Gas constant, J/(mol K), and k_B in eV/K; eV to kJ/mol.
R = 8.314462618
K_B = 8.617333262e-5
EV_TO_KJ_PER_MOL = 96.48533212
#: Atomic mass unit in kg; Å³ in m³.
AMU = 1.66053906660e-27
ANGSTROM3 = 1e-30


def framework_density(framework: Atoms) -> float:
    """Mass density of the framework, kg/m³."""
    mass = framework.get_masses().sum() * AMU
    return float(mass / (framework.get_volume() * ANGSTROM3))


def insertions(
    framework: Atoms, guest: Atoms, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` random placements of ``guest``: ``(n, len(guest), 3)`` positions, Å.

    Centres of mass uniform in the cell, orientations uniform on SO(3).
    """
    centred = guest.positions - guest.get_center_of_mass()
    centres = rng.random((n, 3)) @ framework.cell.array
    rotations = Rotation.random(n, random_state=rng).as_matrix()
    return np.einsum("nij,aj->nai", rotations, centred) + centres[:, None, :]


#: The cell and its 26 neighbours, in fractional shifts.
SHIFTS = np.array(
    [[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], float
)


def wrapped(cell: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points ``(n, 3)`` wrapped into the cell (rows of ``cell``), Å."""
    frac = np.linalg.solve(cell.T, np.reshape(points, (-1, 3)).T).T
    return (frac - np.floor(frac)) @ cell


def periodic_images(cell: np.ndarray, points: np.ndarray):
    """Points wrapped into the cell and their images in the 26 neighbouring cells.

    Returns the image positions ``(27 n, 3)`` and each image's point index:
    every image within one cell width of a point in the cell is there.
    """
    inside = wrapped(cell, points)
    images = (inside[None] + (SHIFTS @ cell)[:, None]).reshape(-1, 3)
    return images, np.tile(np.arange(len(inside)), len(SHIFTS))


def overlapping(
    framework: Atoms,
    guest_numbers: np.ndarray,
    placed: np.ndarray,
    hard_core: float = HARD_CORE,
) -> np.ndarray:
    """Which placements put a guest atom inside a framework atom's hard core.

    Distances are periodic (the framework and its 26 neighbouring images);
    the cut for a pair is ``hard_core`` times its covalent radii sum.
    """
    cell = framework.cell.array
    images, owner = periodic_images(cell, framework.positions)
    radii = covalent_radii[framework.numbers][owner]
    tree = cKDTree(images)
    inside = wrapped(cell, placed)  # guest atoms wrapped into the cell
    reach = hard_core * (radii.max() + covalent_radii[guest_numbers].max())
    hit = np.zeros(len(inside), dtype=bool)
    g_radii = np.tile(covalent_radii[guest_numbers], len(placed))
    for a, near in enumerate(tree.query_ball_point(inside, reach)):
        if near:
            d = np.linalg.norm(images[near] - inside[a], axis=1)
            hit[a] = (d < hard_core * (radii[near] + g_radii[a])).any()
    return hit.reshape(len(placed), -1).any(axis=1)


@dataclass
class WidomAverages:
    """Boltzmann averages at one temperature (units in the field names' docs).

    Attributes
    ----------
    temperature : float
        K.
    henry_coefficient, henry_coefficient_error : float
        mol kg⁻¹ Pa⁻¹; the error is the bootstrap standard error.
    heat_of_adsorption, heat_of_adsorption_error : float or None
        Q_st at infinite dilution, kJ/mol, positive when binding; None when
        every insertion had zero weight.
    mean_energy : float or None
        Boltzmann-weighted ⟨ΔE⟩, eV.
    effective_insertions : float
        Kish's effective sample size (Σu)²/Σu² of the weights u = w·exp(−βΔE)
        (w the importance weights): 1 when one insertion carries the whole
        average, the number of non-overlapping insertions when all weigh the
        same; 0 without any.
    """

    temperature: float
    henry_coefficient: float
    henry_coefficient_error: float
    heat_of_adsorption: float | None
    heat_of_adsorption_error: float | None
    mean_energy: float | None
    effective_insertions: float


def averages(
    delta_e: np.ndarray,
    temperature: float,
    density: float,
    weights: np.ndarray | None = None,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> WidomAverages:
    """K_H, Q_st and ⟨ΔE⟩ from insertion energies (eV; +inf for zero weight).

    Parameters
    ----------
    delta_e : numpy.ndarray
        Every insertion of the sample, zero-weight ones (overlaps, excluded)
        as ``inf``.
    temperature : float
        K.
    density : float
        Framework density, kg/m³.
    weights : numpy.ndarray, optional
        Importance weights p_uniform/q of the insertions (default 1, the
        uniform estimator); see :mod:`~sevenomni_flows.properties.widom.sampling`.
    bootstrap : int
        Poisson-bootstrap resamples for the errors (0: no errors).
    seed : int
        Seeds the resampling (the errors are deterministic).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature}")
    delta_e = np.asarray(delta_e, dtype=float)
    w = np.ones(len(delta_e)) if weights is None else np.asarray(weights, float)
    beta = 1.0 / (K_B * temperature)
    finite = np.isfinite(delta_e) & (w > 0)
    e, w = delta_e[finite], w[finite]
    shift = e.min() if e.size else 0.0  # keeps exp() in range
    scale = np.exp(-beta * shift) / (density * R * temperature)
    u = w * np.exp(-beta * (e - shift))
    n = max(len(delta_e), 1)
    k_h = u.sum() / n * scale
    effective = float(u.sum() ** 2 / (u**2).sum()) if e.size else 0.0
    q_st = mean = q_err = None
    k_err = 0.0
    if e.size:
        mean = float((u * e).sum() / u.sum())
        q_st = R * temperature / 1000.0 - mean * EV_TO_KJ_PER_MOL
    if bootstrap and e.size:
        rng = np.random.default_rng(seed)
        counts = rng.poisson(1.0, (bootstrap, e.size))
        # the zero-weight insertions count in each resample's size
        size = counts.sum(axis=1) + rng.poisson(n - e.size, bootstrap)
        sums = counts @ u
        k_err = float(np.std(sums / np.maximum(size, 1) * scale, ddof=1))
        ok = sums > 0
        if ok.sum() >= bootstrap // 2:
            means = (counts[ok] @ (u * e)) / sums[ok]
            q_err = float(np.std(means, ddof=1) * EV_TO_KJ_PER_MOL)
    return WidomAverages(
        temperature=float(temperature),
        henry_coefficient=float(k_h),
        henry_coefficient_error=k_err if bootstrap else float("nan"),
        heat_of_adsorption=None if q_st is None else float(q_st),
        heat_of_adsorption_error=q_err,
        mean_energy=mean,
        effective_insertions=effective,
    )
