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

Two rules keep a few insertions from ruining the averages:

- **overlap**: a guest atom closer to a framework atom than
  :data:`HARD_CORE` times the sum of their covalent radii has zero weight,
  without a model call (its true energy is strongly repulsive; a model far
  from its data may say otherwise);
- **unphysical**: an insertion with ΔE below ``min_energy`` (default
  −2 eV, beyond any physisorption, including water on open metal sites at
  about −0.8 eV) is excluded and counted: it is an artefact of the model,
  whose weight exp(−βΔE) would otherwise dominate everything.

Errors are block averages: the insertions are cut into :data:`BLOCKS`
blocks, K_H and Q_st computed per block, and the standard error of their
mean reported.  Block errors cannot see what the sample missed, so each
temperature also reports the number of effective insertions (Kish's
(Σw)²/Σw² of the Boltzmann weights w): when a handful of insertions carry
the whole average (fewer than :data:`MIN_EFFECTIVE`), K_H and Q_st are not
converged, whatever the block error says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

__all__ = [
    "BLOCKS",
    "HARD_CORE",
    "MIN_EFFECTIVE",
    "WidomAverages",
    "averages",
    "framework_density",
    "insertions",
    "overlapping",
]

#: Overlap when a distance is below this fraction of the covalent radii sum.
HARD_CORE = 0.65
#: Blocks for the statistical errors.
BLOCKS = 10
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
    shifts = np.array(
        [[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]
    )
    wrapped = framework.get_positions(wrap=True)
    images = (wrapped[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    radii = np.tile(covalent_radii[framework.numbers], len(shifts))
    tree = cKDTree(images)
    frac = np.linalg.solve(cell.T, placed.reshape(-1, 3).T).T
    inside = (frac - np.floor(frac)) @ cell  # guest atoms wrapped into the cell
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
        mol kg⁻¹ Pa⁻¹.
    heat_of_adsorption, heat_of_adsorption_error : float or None
        Q_st at infinite dilution, kJ/mol, positive when binding; None when
        every insertion had zero weight.
    mean_energy : float or None
        Boltzmann-weighted ⟨ΔE⟩, eV.
    effective_insertions : float
        Kish's effective sample size (Σw)²/Σw² of the Boltzmann weights: 1
        when one insertion carries the whole average, the number of
        non-overlapping insertions when all weigh the same; 0 without any.
    """

    temperature: float
    henry_coefficient: float
    henry_coefficient_error: float
    heat_of_adsorption: float | None
    heat_of_adsorption_error: float | None
    mean_energy: float | None
    effective_insertions: float


def _block(delta_e: np.ndarray, beta: float, shift: float):
    """Weight sum and weighted energy sum, relative to exp(−β shift)."""
    finite = np.isfinite(delta_e)  # overlaps: zero weight
    w = np.exp(-beta * (delta_e[finite] - shift))
    return w.sum(), (w * delta_e[finite]).sum()


def averages(
    delta_e: np.ndarray, temperature: float, density: float, blocks: int = BLOCKS
) -> WidomAverages:
    """K_H, Q_st and ⟨ΔE⟩ from insertion energies (eV; +inf for overlaps).

    ``delta_e`` holds every insertion, overlaps as ``inf`` (zero weight), in
    the order made, so that blocks are independent samples.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature}")
    delta_e = np.asarray(delta_e, dtype=float)
    beta = 1.0 / (K_B * temperature)
    finite = delta_e[np.isfinite(delta_e)]
    shift = finite.min() if finite.size else 0.0  # keeps exp() in range
    scale = np.exp(-beta * shift) / (density * R * temperature)

    def estimate(sample):
        weights, weighted = _block(sample, beta, shift)
        k_h = weights / len(sample) * scale
        if weights == 0:
            return k_h, None, None
        mean = weighted / weights
        q_st = (R * temperature / 1000.0) - mean * EV_TO_KJ_PER_MOL
        return k_h, q_st, mean

    k_h, q_st, mean = estimate(delta_e)
    w = np.exp(-beta * (finite - shift))
    effective = float(w.sum() ** 2 / (w**2).sum()) if finite.size else 0.0
    parts = [estimate(b) for b in np.array_split(delta_e, blocks) if b.size]
    k_err = _standard_error([p[0] for p in parts])
    q_parts = [p[1] for p in parts if p[1] is not None]
    q_err = _standard_error(q_parts) if len(q_parts) == len(parts) else None
    return WidomAverages(
        temperature=float(temperature),
        henry_coefficient=float(k_h),
        henry_coefficient_error=k_err,
        heat_of_adsorption=None if q_st is None else float(q_st),
        heat_of_adsorption_error=q_err if q_st is not None else None,
        mean_energy=None if mean is None else float(mean),
        effective_insertions=effective,
    )


def _standard_error(values: list[float]) -> float:
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(len(values)))
