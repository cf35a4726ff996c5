"""Batched prediction and relaxation against the single-structure calculator and ASE."""

import importlib

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc100, molecule
from ase.constraints import FixAtoms
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from structures import STRUCTURES

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.batch import predict, relax
from sevenomni_core.testing import evaluate


def test_batched_equals_single_with_mixed_tasks():
    """One batch of varied structures and tasks equals the calculator, per structure."""
    structures = [make() for make in STRUCTURES.values()] * 2
    tasks = ["PBE", "R2SCAN"] * (len(structures) // 2)
    out = predict(structures, model="7net-mf-0", task=tasks, device="cpu")
    for atoms, task, pred in zip(structures, tasks, out, strict=True):
        calc = SevenOmniCalculator("7net-mf-0", task=task, device="cpu")
        e, f, s = evaluate(calc, atoms)
        assert abs(pred.energy - e) / len(atoms) < 1e-5
        np.testing.assert_allclose(pred.forces, f, atol=1e-4)
        if atoms.pbc.any():
            np.testing.assert_allclose(pred.stress, s, atol=1e-5)
        else:
            assert pred.stress is None


def test_batch_sizes_agree():
    """Fixed batch sizes, one structure per pass and 'auto' give the same numbers."""
    structures = [bulk("Cu", "fcc", a=3.6 + 0.02 * i) for i in range(5)]
    a = predict(structures, model="7net-0", batch_size=1, device="cpu")
    b = predict(structures, model="7net-0", batch_size=2, device="cpu")
    c = predict(structures, model="7net-0", device="cpu")
    for x, y, z in zip(a, b, c, strict=True):
        assert x.energy == pytest.approx(y.energy, abs=1e-5)
        assert x.energy == pytest.approx(z.energy, abs=1e-5)


def test_bad_items_fail_alone():
    """Invalid inputs get an error naming them; the rest of the batch completes."""
    nan = bulk("Cu")
    nan.positions[0, 0] = np.nan
    unknown = bulk("Cu")
    unknown.symbols[0] = "Og"
    good = bulk("Si", "diamond", a=5.43)
    out = predict([good, nan, unknown, "not a structure", good], model="7net-0")
    assert out[0].ok and out[4].ok
    assert out[0].energy == pytest.approx(out[4].energy)
    assert "structure 1" in out[1].error and "non-finite" in out[1].error
    assert "Og" in out[2].error and "7net-0" in out[2].error
    assert "expected ase.Atoms" in out[3].error
    bad_task = predict([good], model="7net-mf-0", task=["nope"])
    assert "valid tasks" in bad_task[0].error


def test_pymatgen_structures_accepted():
    """pymatgen Structures are converted (if pymatgen is installed)."""
    pytest.importorskip("pymatgen")
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = bulk("Si", "diamond", a=5.43)
    out = predict([AseAtomsAdaptor.get_structure(atoms), atoms], model="7net-0")
    assert out[0].energy == pytest.approx(out[1].energy, abs=1e-6)


@pytest.fixture(scope="module")
def relax_inputs():
    structures = [
        bulk("Cu", "fcc", a=3.7, cubic=True),
        bulk("Si", "diamond", a=5.5),
        bulk("NaCl", "rocksalt", a=5.4),
        bulk("Mg", "hcp", a=3.3),
    ]
    for i, atoms in enumerate(structures):
        atoms.rattle(0.05, seed=i)
    return structures


def test_relax_matches_ase_fire_frechet(relax_inputs):
    """Batched cell relaxations reach ASE FIRE + FrechetCellFilter minima."""
    results = relax(
        relax_inputs,
        model="7net-0",
        fmax=0.02,
        max_steps=300,
        relax_cell=True,
        batch_size=3,
        device="cpu",
    )
    calc = SevenOmniCalculator("7net-0", device="cpu")
    for atoms, res in zip(relax_inputs, results, strict=True):
        ref = atoms.copy()
        ref.calc = calc
        opt = FIRE(FrechetCellFilter(ref), logfile=None)
        opt.run(fmax=0.02, steps=300)
        assert res.converged
        assert abs(res.energy - ref.get_potential_energy()) / len(ref) < 2e-3
        assert res.atoms.get_volume() == pytest.approx(ref.get_volume(), rel=1e-3)
        assert abs(res.steps - opt.nsteps) <= 3
        assert np.abs(res.atoms.get_forces()).max() < 0.02


def test_fixed_atoms_and_positions_only():
    """FixAtoms and the fixed= argument hold atoms in place; others relax."""
    slab = fcc100("Cu", size=(2, 2, 3), vacuum=6.0)
    slab.rattle(0.05, seed=3)
    slab.set_constraint(FixAtoms(indices=[0, 1]))
    start = slab.positions.copy()
    [res] = relax([slab], model="7net-0", fixed=[[2, 3]], fmax=0.05, max_steps=200)
    assert res.converged
    np.testing.assert_array_equal(res.atoms.positions[:4], start[:4])
    assert np.abs(res.atoms.positions[4:] - start[4:]).max() > 1e-3
    assert res.atoms.get_cell() == pytest.approx(slab.get_cell())


def test_not_converged_is_flagged():
    """A relaxation cut short reports converged=False and its step count."""
    atoms = bulk("Cu", "fcc", a=3.8, cubic=True)
    atoms.rattle(0.1, seed=0)
    [res] = relax([atoms], model="7net-0", fmax=1e-4, max_steps=3, relax_cell=True)
    assert not res.converged and res.steps == 3


def test_relax_errors_fail_alone(monkeypatch, relax_inputs):
    """A diverging structure and invalid inputs fail; the others converge."""
    relax_module = importlib.import_module("sevenomni_core.batch.relax")
    real = relax_module.evaluate_graphs
    pot = load_model("7net-0")

    def exploding(potential, graphs, stress=True, **kwargs):
        preds = real(potential, graphs, stress, **kwargs)
        for g, p in zip(graphs, preds, strict=True):
            if int(g["num_atoms"][0]) == 4:  # the Cu cell blows up
                p.forces = p.forces * np.nan
        return preds

    monkeypatch.setattr(relax_module, "evaluate_graphs", exploding)
    mol = molecule("H2O")
    out = relax(
        [*relax_inputs, mol],
        model=pot,
        relax_cell=[True, True, True, True, True],
        fmax=0.05,
        max_steps=200,
    )
    assert "diverged" in out[0].error
    assert all(r.converged for r in out[1:4])
    assert "fully periodic" in out[4].error


def test_out_of_memory_splits_the_batch(monkeypatch):
    """A batch that runs out of memory is split and retried; results are unchanged."""
    predict_module = importlib.import_module("sevenomni_core.batch.predict")
    real = predict_module._run
    sizes = []

    def limited(potential, graphs, stress, forces=True, energies=True):
        if len(graphs) > 2:
            raise torch.OutOfMemoryError("simulated")
        sizes.append(len(graphs))
        return real(potential, graphs, stress, forces, energies)

    structures = [bulk("Cu", "fcc", a=3.6 + 0.01 * i) for i in range(5)]
    expected = predict(structures, model="7net-0", batch_size=5)
    monkeypatch.setattr(predict_module, "_run", limited)
    got = predict(structures, model="7net-0", batch_size=5)
    assert sum(sizes) == 5 and max(sizes) <= 2
    for a, b in zip(expected, got, strict=True):
        assert a.energy == pytest.approx(b.energy, abs=1e-6)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    """float32 on CUDA equals the CPU path (batched energies, forces, stress)."""
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    structures = [make() for make in STRUCTURES.values()]
    cpu = predict(structures, model="7net-mf-0", device="cpu")
    gpu = predict(structures, model="7net-mf-0", device="cuda")
    for a, b, atoms in zip(cpu, gpu, structures, strict=True):
        assert abs(a.energy - b.energy) / len(atoms) < 1e-5
        np.testing.assert_allclose(a.forces, b.forces, atol=1e-4)
