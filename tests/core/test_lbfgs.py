"""Batched L-BFGS and BFGS relaxation against ASE's ``LBFGS`` and ``BFGS``.

The model tests run in float64 with 7net-0 on three small structures: a
rattled Cu bulk (positions only), a strained, rattled Si cell (with the
cell, as ``FrechetCellFilter``) and a Cu(111) slab whose bottom two layers
are fixed.
"""

import numpy as np
import pytest
from ase.build import add_adsorbate, bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.cluster import Octahedron
from ase.constraints import FixAtoms
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.batch import optimizers as opt
from sevenomni_core.batch import relax

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FMAX = 0.02
ASE_OPTIMIZERS = {"lbfgs": LBFGS, "bfgs": BFGS}


def rattled_cu():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    return atoms


def strained_si():
    atoms = bulk("Si", "diamond", a=5.5, cubic=True)
    strain = np.eye(3) + 0.02 * np.random.default_rng(0).normal(size=(3, 3))
    atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    return atoms


def cu111_slab():
    """Cu(111), 2x2x4; the bottom two layers fixed, the top layer rattled."""
    atoms = fcc111("Cu", size=(2, 2, 4), vacuum=6.0)
    z = atoms.positions[:, 2]
    atoms.set_constraint(FixAtoms(mask=z < z.min() + 2.5))
    top = z > z.max() - 0.5
    atoms.positions[top] += np.random.default_rng(3).normal(0, 0.1, (top.sum(), 3))
    return atoms


CASES = [rattled_cu(), strained_si(), cu111_slab()]
RELAX_CELL = [False, True, False]


@pytest.fixture(scope="module")
def pot():
    return load_model("7net-0", device="cpu", dtype="float64")


@pytest.fixture(scope="module")
def batched(pot):
    """Each optimiser's results on the three cases, relaxed in one batch."""
    return {
        name: relax(
            CASES,
            model=pot,
            fmax=FMAX,
            max_steps=300,
            relax_cell=RELAX_CELL,
            batch_size=len(CASES),
            optimizer=name,
        )
        for name in ASE_OPTIMIZERS
    }


@pytest.mark.parametrize("name", ["fire", "lbfgs", "bfgs"])
def test_steps_follow_ase_exactly(name):
    """Driven by EMT forces, each optimiser retraces ASE's path step by step
    (L-BFGS with a memory of 3, so that old steps are dropped)."""
    start = Octahedron("Cu", 3)
    start.rattle(0.1, seed=4)
    start.calc = EMT()
    x0 = start.positions.copy()
    ours = {
        "fire": opt.Fire(),
        "lbfgs": opt.LBFGS(memory=3),
        "bfgs": opt.BFGS(),
    }[name]
    ref = start.copy()
    ref.calc = EMT()
    ase = {"fire": FIRE, "lbfgs": LBFGS, "bfgs": BFGS}[name]
    kwargs = {"memory": 3} if name == "lbfgs" else {}
    ase_opt = ase(ref, logfile=None, **kwargs)
    for _ in range(25):
        x = start.positions.copy()
        start.positions = x + ours.step(x, start.get_forces())
        ase_opt.step()
        np.testing.assert_allclose(start.positions, ref.positions, atol=1e-10)
    assert np.abs(start.positions - x0).max() > 0.05


@pytest.mark.parametrize("name", ASE_OPTIMIZERS)
def test_matches_ase(name, batched):
    """The batched runs reach ASE's minima in the same number of steps."""
    calc = SevenOmniCalculator(model="7net-0", device="cpu", dtype="float64")
    for atoms, cell, res in zip(CASES, RELAX_CELL, batched[name], strict=True):
        ref = atoms.copy()
        ref.calc = calc
        ase_opt = ASE_OPTIMIZERS[name](
            FrechetCellFilter(ref) if cell else ref, logfile=None
        )
        assert ase_opt.run(fmax=FMAX, steps=300)
        assert res.converged
        de = abs(res.energy - ref.get_potential_energy()) / len(ref)
        assert de < 1e-3, f"{atoms.symbols}: {de * 1e3:.3f} meV/atom"
        assert abs(res.steps - ase_opt.nsteps) <= 2, (res.steps, ase_opt.nsteps)


@pytest.mark.parametrize("name", ASE_OPTIMIZERS)
def test_batched_equals_single(name, pot, batched):
    """Relaxed together or one at a time, every structure ends the same."""
    for atoms, cell, together in zip(CASES, RELAX_CELL, batched[name], strict=True):
        [alone] = relax(
            [atoms],
            model=pot,
            fmax=FMAX,
            max_steps=300,
            relax_cell=cell,
            optimizer=name,
        )
        assert abs(alone.energy - together.energy) / len(atoms) < 1e-6
        assert alone.steps == together.steps


@pytest.mark.parametrize("name", ASE_OPTIMIZERS)
def test_fixed_atoms_do_not_move(name, pot, batched):
    """Fixed atoms keep their exact positions, with and without the cell."""
    slab = CASES[2]
    fixed = slab.constraints[0].index
    after = batched[name][2].atoms.positions
    np.testing.assert_array_equal(after[fixed], slab.positions[fixed])
    assert np.abs(np.delete(after - slab.positions, fixed, axis=0)).max() > 1e-2

    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms.rattle(0.05, seed=5)
    [res] = relax(
        [atoms], model=pot, fixed=[[0, 2]], relax_cell=True, max_steps=6, optimizer=name
    )
    assert res.steps == 6
    np.testing.assert_array_equal(res.atoms.positions[[0, 2]], atoms.positions[[0, 2]])
    assert abs(res.atoms.get_volume() / atoms.get_volume() - 1) > 1e-3


def test_physisorbed_molecule_converges_faster_than_fire(pot):
    """CO2 3 Å above a fixed Cu(111) slab: L-BFGS needs far fewer steps.

    Both stop in the same shallow well (the softest curvatures there, the
    molecule sliding and spinning, are ~0.01 eV/Å²).  With fmax 0.02 eV/Å
    the two final energies differ by 0.15 meV; 1 meV per molecule allows
    for that with a 6x margin yet tells apart another site or orientation
    (FIRE stopped at fmax 0.05 still lies 4 meV above).
    """
    atoms = fcc111("Cu", size=(3, 3, 3), vacuum=8.0)
    n_slab = len(atoms)
    co2 = molecule("CO2")
    co2.rotate(90, "y")
    co2.rotate(20, "z")
    add_adsorbate(atoms, co2, 3.0, "fcc")
    atoms.set_constraint(FixAtoms(indices=range(n_slab)))
    atoms.rattle(0.02, seed=0)
    runs = {
        name: relax([atoms], model=pot, fmax=FMAX, max_steps=1000, optimizer=name)[0]
        for name in ("lbfgs", "fire")
    }
    assert runs["lbfgs"].converged and runs["fire"].converged
    assert runs["lbfgs"].steps < runs["fire"].steps / 2
    assert abs(runs["lbfgs"].energy - runs["fire"].energy) < 1e-3
    np.testing.assert_array_equal(
        runs["lbfgs"].atoms.positions[:n_slab], atoms.positions[:n_slab]
    )


def test_unknown_optimizer_names_the_valid_ones(pot):
    with pytest.raises(ValueError, match=r"'adam'.*fire, lbfgs, bfgs"):
        relax([bulk("Cu")], model=pot, optimizer="adam")
    with pytest.raises(ValueError, match=r"FIRE settings.*'lbfgs'"):
        relax([bulk("Cu")], model=pot, optimizer="lbfgs", fire=opt.FireParameters())
