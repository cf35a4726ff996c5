"""Symmetry and consistency checks of energies, forces and stress.

Each function returns the largest deviations it found as a dict, so a test
can assert on them and a failing report shows the numbers.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.stress import full_3x3_to_voigt_6_stress

__all__ = [
    "check_equivariance",
    "check_extensivity",
    "check_finite_differences",
    "evaluate",
    "random_rotation",
]


def random_rotation(rng: np.random.Generator, reflect: bool = False) -> np.ndarray:
    """A uniformly random proper rotation (times -1 with ``reflect``)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return -q if reflect else q


def evaluate(
    calc: Calculator, atoms: Atoms, voigt: bool = True
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Energy, forces and stress of a copy of ``atoms`` with ``calc``.

    The stress is ASE's (Voigt, or 3x3 with ``voigt=False``), None without a
    periodic cell; ``atoms`` itself is left as it was.
    """
    atoms = atoms.copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=voigt) if atoms.pbc.any() else None
    return energy, forces, stress


def check_equivariance(
    calc: Calculator, atoms: Atoms, seed: int = 0, reflect: bool = False
) -> dict[str, float]:
    """Deviations under rotation (or roto-reflection), translation and permutation.

    The energy must not change, forces must rotate with the structure and
    follow the permutation, and the stress must transform as ``R s R^T``.

    Returns
    -------
    dict
        ``energy`` (eV), ``forces`` (eV/Å) and ``stress`` (eV/Å³) maxima over
        the three transformations.
    """
    rng = np.random.default_rng(seed)
    e0, f0, s0 = evaluate(calc, atoms, voigt=False)
    worst = {"energy": 0.0, "forces": 0.0, "stress": 0.0}

    def update(e, f, s, f_expected, s_expected):
        worst["energy"] = max(worst["energy"], abs(e - e0))
        worst["forces"] = max(worst["forces"], float(np.abs(f - f_expected).max()))
        if s is not None and s_expected is not None:
            worst["stress"] = max(worst["stress"], float(np.abs(s - s_expected).max()))

    rot = random_rotation(rng, reflect)
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rot.T
    rotated.cell = atoms.cell.array @ rot.T
    e, f, s = evaluate(calc, rotated, voigt=False)
    update(e, f, s, f0 @ rot.T, None if s0 is None else rot @ s0 @ rot.T)

    moved = atoms.copy()
    moved.positions = atoms.positions + rng.normal(size=3) * 3.0
    e, f, s = evaluate(calc, moved, voigt=False)
    update(e, f, s, f0, s0)

    perm = rng.permutation(len(atoms))
    permuted = atoms[perm]
    e, f, s = evaluate(calc, permuted, voigt=False)
    update(e, f, s, f0[perm], s0)
    return worst


def check_finite_differences(
    calc: Calculator, atoms: Atoms, delta: float = 1e-4
) -> dict[str, float]:
    """Deviation of forces and stress from central finite differences of the energy.

    Uses ASE's numerical force and stress helpers (displacements and strains
    of ``delta``); run the calculator in float64.
    """
    atoms = atoms.copy()
    atoms.calc = calc
    forces = atoms.get_forces()
    numeric_f = calculate_numerical_forces(atoms, eps=delta)
    out = {"forces": float(np.abs(forces - numeric_f).max())}
    if atoms.pbc.all():
        stress = atoms.get_stress()
        numeric_s = calculate_numerical_stress(atoms, eps=delta, voigt=True)
        out["stress"] = float(np.abs(stress - numeric_s).max())
    return out


def check_extensivity(
    calc: Calculator, atoms: Atoms, repeat: tuple[int, int, int] = (2, 2, 2)
) -> dict[str, float]:
    """Deviation of a supercell from the unit cell: energy per atom, forces, stress."""
    e0, f0, s0 = evaluate(calc, atoms, voigt=False)
    big = atoms.repeat(repeat)
    e, f, s = evaluate(calc, big, voigt=False)
    n = int(np.prod(repeat))
    out = {
        "energy_per_atom": abs(e / len(big) - e0 / len(atoms)),
        "forces": float(np.abs(f - np.tile(f0, (n, 1))).max()),
    }
    if s0 is not None and s is not None:
        out["stress"] = float(
            np.abs(full_3x3_to_voigt_6_stress(s) - full_3x3_to_voigt_6_stress(s0)).max()
        )
    return out
