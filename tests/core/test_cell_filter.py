"""The cell degrees of freedom of the batched relaxation (``batch/cell.py``)."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.stress import voigt_6_to_full_3x3_stress
from scipy.linalg import expm

from sevenomni_core.batch.cell import cell_force, deformation, expm_gradient


def _numerical_gradient(a: np.ndarray, g: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            d = np.zeros((3, 3))
            d[i, j] = h
            out[i, j] = (np.sum(g * expm(a + d)) - np.sum(g * expm(a - d))) / (2 * h)
    return out


def test_expm_gradient_matches_central_differences():
    """The closed form (a 6x6 exponential) is the gradient of <g, exp(a)> for a
    non-symmetric, non-normal ``a``; without the transpose it is not."""
    rng = np.random.default_rng(7)
    a, g = rng.normal(0, 0.4, (3, 3)), rng.normal(0, 1, (3, 3))
    numerical = _numerical_gradient(a, g)
    np.testing.assert_allclose(expm_gradient(a, g), numerical, atol=1e-8)
    # planted: the Fréchet derivative at a instead of at its transpose (the
    # function transposes what it is given, so feeding aᵀ drops the transpose)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(expm_gradient(a.T, g), numerical, atol=1e-8)


def test_cell_force_matches_ase_frechet_cell_filter():
    """On a sheared, stretched cell, the cell rows of ASE's FrechetCellFilter
    forces (scipy's expm_frechet, nine directions) equal ``cell_force``."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = EMT()
    filt = FrechetCellFilter(atoms)
    n = len(atoms)
    u = n * np.array([[0.03, 0.02, -0.01], [0.0, -0.02, 0.015], [0.01, 0.0, 0.01]])
    f_mat = deformation(u, float(n))
    atoms.set_cell(filt.orig_cell @ f_mat.T, scale_atoms=True)
    expected = filt.get_forces()[n:]
    stress = voigt_6_to_full_3x3_stress(atoms.get_stress())
    got = cell_force(u, stress, atoms.get_volume(), float(n))
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert np.abs(expected).max() > 0.05  # a real test: the cell is far from rest
