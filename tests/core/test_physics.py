"""Physical laws: symmetry, energy-force consistency, extensivity."""

import pytest
from ase.build import bulk
from structures import molecule_ethanol, slab_with_adsorbate, small_cell, triclinic
from tiny import tiny_parity_potential

from sevenomni_core import SevenOmniCalculator
from sevenomni_core.testing import (
    check_equivariance,
    check_extensivity,
    check_finite_differences,
)


@pytest.fixture(scope="module")
def calc64():
    return SevenOmniCalculator("7net-mf-0", task="PBE", device="cpu", dtype="float64")


@pytest.mark.parametrize("make", [triclinic, slab_with_adsorbate, molecule_ethanol])
def test_equivariance(calc64, make):
    """Energy invariant; forces and stress rotate (SO(3)), translate and permute."""
    worst = check_equivariance(calc64, make(), seed=4)
    assert worst["energy"] < 1e-8
    assert worst["forces"] < 1e-7
    assert worst["stress"] < 1e-9


def test_reflection_needs_parity(calc64):
    """O(3) models are reflection-equivariant; SO(3) models (is_parity off) are not."""
    from ase import Atoms

    parity = SevenOmniCalculator(tiny_parity_potential(), task="b")
    chiral = Atoms(
        "CHOCu",
        positions=[[0, 0, 0], [1.1, 0, 0], [0, 1.4, 0], [0.3, 0.4, 2.0]],
    )
    worst = check_equivariance(parity, chiral, seed=5, reflect=True)
    assert worst["energy"] < 1e-10 and worst["forces"] < 1e-10
    mirrored = chiral.copy()
    mirrored.positions[:, 2] *= -1
    chiral.calc = calc64
    mirrored.calc = calc64
    assert abs(chiral.get_potential_energy() - mirrored.get_potential_energy()) > 1e-6


@pytest.mark.parametrize("make", [triclinic, small_cell, molecule_ethanol])
def test_finite_differences(calc64, make):
    """Forces and stress are the derivatives of the energy (float64)."""
    dev = check_finite_differences(calc64, make(), delta=1e-4)
    assert dev["forces"] < 1e-5
    if "stress" in dev:
        assert dev["stress"] < 1e-6


def test_extensivity(calc64):
    """A 2x2x2 supercell has the same energy per atom, forces and stress."""
    atoms = triclinic()
    dev = check_extensivity(calc64, atoms, (2, 2, 2))
    assert dev["energy_per_atom"] < 1e-9
    assert dev["forces"] < 1e-9
    assert dev["stress"] < 1e-9


def test_far_fragments_add(calc64):
    """Two molecules beyond the cutoff: energy is the sum of their energies."""
    a = molecule_ethanol()
    b = molecule_ethanol()
    b.positions += [20.0, 0, 0]
    e = []
    for atoms in (a, b, a + b):
        atoms.calc = calc64
        e.append(atoms.get_potential_energy())
    assert e[2] == pytest.approx(e[0] + e[1], abs=1e-9)


def test_smooth_at_cutoff(calc64):
    """A dimer's energy and force go continuously to their isolated values at 5 Å."""
    from ase import Atoms

    values = []
    for r in (4.999, 4.9999, 5.0005):
        dimer = Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]])
        dimer.calc = calc64
        values.append((dimer.get_potential_energy(), dimer.get_forces()[0, 0]))
    (e1, f1), (e2, f2), (e_far, f_far) = values
    assert f_far == 0.0
    # XPLOR vanishes quadratically: 10x closer to the cutoff, ~100x smaller
    assert abs(e2 - e_far) < abs(e1 - e_far) / 50
    assert abs(f2) < abs(f1) / 5 and abs(f2) < 1e-3


class _Broken(SevenOmniCalculator):
    """A calculator with planted bugs, to show the checks catch them."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        super().calculate(atoms, properties, ["positions", "numbers", "cell", "pbc"])
        self.results["energy"] += 0.01 * atoms.positions[:, 0].sum()  # not invariant
        self.results["forces"] = self.results["forces"] * 1.01  # not the derivative


def test_checks_catch_a_broken_calculator():
    """The equivariance and finite-difference checks fail on planted bugs."""
    broken = _Broken("7net-mf-0", device="cpu", dtype="float64")
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.rattle(0.05, seed=0)
    assert check_equivariance(broken, atoms, seed=1)["energy"] > 1e-4
    assert check_finite_differences(broken, atoms)["forces"] > 1e-4
