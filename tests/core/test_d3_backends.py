"""D3's two paths: simple-dftd3 on the CPU (the default there) and the
batched torch path (GPUs, or without the ``dftd3`` package).

The oracle is simple-dftd3 called as its own users call it: parameters from
its table by functional name, ASE's unit constants.  The delegated path is
handed our parameters, cutoffs and units, so this checks that hand-over."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.io import read
from ase.units import Bohr, Hartree
from structures import slab_with_adsorbate
from tiny import tiny_parity_potential

import sevenomni_core.calculator as calculator_module
import sevenomni_core.dispersion._d3 as d3_module
from sevenomni_core import SevenOmniCalculator
from sevenomni_core import _keys as K
from sevenomni_core.batch import predict, relax
from sevenomni_core.batch.predict import evaluate_graphs
from sevenomni_core.data import atoms_to_graph
from sevenomni_core.dispersion import (
    D3Config,
    d3_backend,
    d3_graphs,
    evaluate_d3,
    with_dispersion,
)

dftd3 = pytest.importorskip("dftd3.interface")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[2]


#: A channel axis of Mg-MOF-74's hexagonal cell (fractional a, b), half way
#: along c: 7.3 Å from the nearest framework atom.
CHANNEL = (1 / 3, 2 / 3, 1 / 2)


def mof_co2(at=CHANNEL) -> Atoms:
    """Mg-MOF-74 (162 atoms) with a CO2 along its channel: 165 atoms."""
    mof = read(ROOT / "workflows" / "structures" / "Mg-MOF-74.cif")
    co2 = molecule("CO2")  # along z, the channel axis c
    co2.positions += np.asarray(at) @ mof.cell.array
    return mof + co2


def pt_slab_256() -> Atoms:
    """Pt(111), 8x8x4 = 256 atoms, 8 Å vacuum, pbc (True, True, False)."""
    slab = fcc111("Pt", (8, 8, 4), vacuum=8.0)
    slab.rattle(0.02, seed=3)
    return slab


SYSTEMS = {"mof": mof_co2, "slab": pt_slab_256}


def test_the_co2_sits_in_the_channel():
    """The MOF's CO2 is at least 5 Å from every framework atom; the earlier
    placement (the cell's centre, a wall) put it 0.41 Å from a C atom."""

    def closest(atoms):
        guest, host = range(162, 165), range(162)
        return min(atoms.get_distances(i, host, mic=True).min() for i in guest)

    assert closest(mof_co2()) > 5.0
    with pytest.raises(AssertionError):
        assert closest(mof_co2(at=(0.5, 0.5, 0.5))) > 5.0


def oracle(atoms: Atoms, config: D3Config):
    """simple-dftd3 by functional name (PBE), ASE units: energy (eV),
    forces (eV/Å), stress (eV/Å³, ASE Voigt order and sign)."""
    model = dftd3.DispersionModel(
        atoms.numbers, atoms.positions / Bohr, atoms.cell.array / Bohr, atoms.pbc
    )
    model.set_realspace_cutoff(
        config.cutoff / Bohr, config.atm_cutoff / Bohr, config.cn_cutoff / Bohr
    )
    damping = {"d3bj": dftd3.RationalDampingParam, "d3zero": dftd3.ZeroDampingParam}
    res = model.get_dispersion(damping[config.damping](method="pbe"), grad=True)
    sigma = res["virial"] * Hartree / atoms.get_volume()
    stress = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return res["energy"] * Hartree, -res["gradient"] * Hartree / Bohr, stress


def assert_close(n_atoms, got, expected, e_tol, f_tol, s_tol):
    """Energy per atom, forces and stress of (energy, forces, stress)."""
    assert abs(got[0] - expected[0]) / n_atoms < e_tol
    np.testing.assert_allclose(got[1], expected[1], rtol=0, atol=f_tol)
    np.testing.assert_allclose(got[2], expected[2], rtol=0, atol=s_tol)


def triple(res):
    return float(res.energy[0]), res.forces, res.stress


# the torch path against both: float64 agrees with simple-dftd3 to 1e-10
# eV/atom for BJ, 1e-7 for zero damping (its R0 radii, which BJ does not use,
# come from tad-mctc's table, not simple-dftd3's); float32 to its precision
TORCH_TOL = {
    ("d3bj", "float64"): (1e-9, 1e-8, 1e-9),
    ("d3zero", "float64"): (5e-7, 5e-7, 5e-8),
    ("d3bj", "float32"): (1e-6, 1e-5, 5e-5),
    ("d3zero", "float32"): (1e-6, 1e-5, 5e-5),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("damping", ["d3bj", "d3zero"])
@pytest.mark.parametrize("system", list(SYSTEMS))
def test_both_paths_match_simple_dftd3(system, damping, dtype):
    """On the CPU the default path is simple-dftd3's, equal to the oracle to
    1e-9 eV/atom in both dtypes (it computes in float64); the torch path
    agrees with both."""
    atoms = SYSTEMS[system]()
    n = len(atoms)
    config = D3Config(damping, functional="pbe")
    cell, pbc = atoms.cell.array[None], atoms.pbc[None]
    assert d3_backend("auto", CPU, cell, pbc) == "simple-dftd3"
    expected = oracle(atoms, config)
    [auto] = evaluate_d3(atoms, config, dtype=dtype)
    assert_close(n, triple(auto), expected, 1e-9, 1e-8, 1e-9)
    [torch_path] = evaluate_d3(atoms, config, dtype=dtype, backend="torch")
    tol = TORCH_TOL[damping, dtype]
    assert_close(n, triple(torch_path), triple(auto), *tol)
    assert_close(n, triple(torch_path), expected, *tol)
    np.testing.assert_allclose(
        torch_path.energies, auto.energies, rtol=0, atol=100 * tol[0]
    )
    assert abs(auto.energies.sum() - auto.energy[0]) < 1e-9
    # control: a stress of the opposite sign (virial taken as -stress) fails
    flipped = (auto.energy[0], auto.forces, -auto.stress)
    with pytest.raises(AssertionError):
        assert_close(n, flipped, expected, 1e-9, 1e-8, 1e-9)


def test_batches_and_three_body_on_both_paths():
    """A CPU batch goes structure by structure to simple-dftd3: a molecule
    (no stress), a slab with an adsorbate, bulk Si with the three-body term;
    per-atom energies (three-body shares too) equal the torch path's."""
    structures = [molecule("C6H6"), slab_with_adsorbate(), bulk("Si", cubic=True)]
    structures[2].rattle(0.05, seed=1)
    config = D3Config("d3bj", functional="pbe", atm=True, atm_cutoff=15 * Bohr)
    auto = evaluate_d3(structures, config)
    by_torch = evaluate_d3(structures, config, backend="torch")
    for atoms, a, t in zip(structures, auto, by_torch, strict=True):
        assert abs(a.energy[0] - t.energy[0]) / len(atoms) < 1e-8
        np.testing.assert_allclose(a.energies, t.energies, rtol=0, atol=1e-8)
        np.testing.assert_allclose(a.forces, t.forces, rtol=0, atol=1e-8)
        assert (a.stress is None) == (t.stress is None) == (not atoms.pbc.any())
        if a.stress is not None:
            np.testing.assert_allclose(a.stress, t.stress, rtol=0, atol=1e-9)
    # energy only: one simple-dftd3 pass, the same energies
    energy_only = evaluate_d3(structures, config, forces=False)
    for a, e in zip(auto, energy_only, strict=True):
        assert abs(a.energy[0] - e.energy[0]) < 1e-12 and e.forces is None
        np.testing.assert_allclose(a.energies, e.energies, rtol=0, atol=1e-12)


def test_backend_selection(monkeypatch, caplog):
    """simple-dftd3 on the CPU; the torch path on another device, without
    the package or for a periodic flat cell, the reason logged; asking for
    simple-dftd3 where it cannot run, or an unknown backend, is an error."""
    cell, pbc = np.eye(3)[None] * 5, np.ones((1, 3), bool)
    flat = np.diag([5.0, 5.0, 0.0])[None]
    monkeypatch.setattr(d3_module, "_LOGGED", set())
    with caplog.at_level(logging.INFO, logger="sevenomni"):
        assert d3_backend("auto", CPU, cell, pbc) == "simple-dftd3"
        assert d3_backend("torch", CPU, cell, pbc) == "torch"
        assert d3_backend("auto", torch.device("cuda"), cell, pbc) == "torch"
        assert d3_backend("auto", CPU, flat, pbc) == "torch"
        molecule_cell = np.zeros((1, 3, 3))
        assert d3_backend("auto", CPU, molecule_cell, ~pbc) == "simple-dftd3"
    assert "the device is cuda" in caplog.text and "flat cell" in caplog.text
    with pytest.raises(ValueError, match="cannot run: the device is cuda"):
        d3_backend("simple-dftd3", torch.device("cuda"), cell, pbc)
    with pytest.raises(ValueError, match="unknown D3 backend 'fortran'"):
        d3_backend("fortran", CPU, cell, pbc)

    # without the dftd3 package: the torch path, the same numbers
    atoms = bulk("Cu", cubic=True)
    config = D3Config("d3bj", functional="pbe")
    [with_package] = evaluate_d3(atoms, config)
    monkeypatch.setattr(d3_module, "simple_dftd3_available", lambda: False)
    calls = []
    monkeypatch.setattr(d3_module, "simple_dftd3_one", lambda *a, **k: calls.append(a))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sevenomni"):
        [without] = evaluate_d3(atoms, config)
    assert "not installed" in caplog.text and not calls
    assert abs(with_package.energy[0] - without.energy[0]) < 1e-9


def test_relaxation_steps_skip_the_per_atom_pass(monkeypatch):
    """Relaxation steps never read per-atom energies: their D3 goes to
    simple-dftd3 without the pairwise pass; ``evaluate_graphs`` otherwise
    keeps them, with the same energies and forces either way."""
    pot = with_dispersion(tiny_parity_potential(torch.float64), "d3bj", "pbe")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=2)
    graph = atoms_to_graph(atoms, pot.cutoff, pot.network.z_to_index, 0)
    [full] = evaluate_graphs(pot, [graph])
    [lean] = evaluate_graphs(pot, [graph], energies=False)
    assert lean.energies is None and full.energies.shape == (len(atoms),)
    assert lean.energy == pytest.approx(full.energy, abs=1e-12)
    np.testing.assert_allclose(lean.forces, full.forces, rtol=0, atol=1e-12)

    asked = []
    real = d3_module.simple_dftd3_one

    def spy(*args, **kwargs):
        asked.append(args[-3::2])  # (forces, energies), positional
        return real(*args, **kwargs)

    monkeypatch.setattr(d3_module, "simple_dftd3_one", spy)
    [res] = relax([atoms], model=pot, task="a", max_steps=3, dtype="float64")
    # the first call: the atoms far apart, whose per-atom energies are the
    # reference of the energy-drop guard, read once (a pairwise pass without
    # forces); then the steps, without them
    assert res.steps > 0 and len(asked) > 3
    assert asked[:2] == [(True, False), (False, True)]
    assert all(a == (True, False) for a in asked[2:])


# ------------------------------------ as the calculator and predict call it


@pytest.fixture(scope="module")
def tiny_d3():
    """A tiny float64 model of the MOF's and the slab's elements, without
    and with D3(BJ) (PBE parameters, as the oracle's)."""
    plain = tiny_parity_potential(torch.float64, species=(1, 6, 8, 12, 29, 78))
    return plain, with_dispersion(plain, "d3bj", "pbe")


def spy_on_simple_dftd3(monkeypatch) -> list[bool]:
    """Records, per simple-dftd3 call, whether per-atom energies (its
    pairwise pass) were asked for."""
    asked = []
    real = d3_module.simple_dftd3_one

    def spy(*args, **kwargs):
        asked.append(args[-1])  # energies: the last positional argument
        return real(*args, **kwargs)

    monkeypatch.setattr(d3_module, "simple_dftd3_one", spy)
    return asked


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_calculator_and_predict_match_simple_dftd3(system, tiny_d3, monkeypatch):
    """With D3 minus without, the calculator and predict give simple-dftd3's
    energy (1e-9 eV/atom), forces and stress, with one gradient pass and no
    pairwise pass; per-atom energies cost that pass only when read (the
    calculator when ASE asks, predict on the first read) and sum to the
    energy."""
    plain_pot, pot = tiny_d3
    atoms = SYSTEMS[system]()
    n = len(atoms)
    expected = oracle(atoms, pot.dispersion)
    plain = SevenOmniCalculator(plain_pot)
    e0, f0, s0 = (plain.get_property(k, atoms) for k in ("energy", "forces", "stress"))
    atomic0 = plain.get_potential_energies(atoms)

    asked = spy_on_simple_dftd3(monkeypatch)
    calc = SevenOmniCalculator(pot)
    got = [calc.get_property(k, atoms) for k in ("energy", "forces", "stress")]
    assert asked == [False] and "energies" not in calc.results
    assert_close(n, (got[0] - e0, got[1] - f0, got[2] - s0), expected, 1e-9, 1e-8, 1e-9)
    atomic = calc.get_potential_energies(atoms)  # a second call, with them
    assert asked == [False, True] and abs(atomic.sum() - got[0]) < 1e-9
    [alone] = evaluate_d3(atoms, pot.dispersion)
    np.testing.assert_allclose(atomic - atomic0, alone.energies, rtol=0, atol=1e-12)

    asked.clear()
    [pred] = predict([atoms], model=pot)
    assert asked == [False]
    assert_close(n, (pred.energy, pred.forces, pred.stress), got, 1e-12, 1e-12, 1e-12)
    np.testing.assert_allclose(pred.energies, atomic, rtol=0, atol=1e-12)
    assert asked == [False, True]  # the first read ran the pairwise pass
    assert pred.energies is pred.energies and len(asked) == 2  # once


def test_per_atom_energies_are_those_of_the_evaluated_structure(tiny_d3):
    """A deferred read gives the per-atom energies of the positions and cell
    that were evaluated, even if the caller's graph moved since (as MD moves
    its graphs in place); a version that kept the live graph is caught."""
    _, pot = tiny_d3
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
    atoms.rattle(0.05, seed=5)
    graph = atoms_to_graph(atoms, pot.cutoff, pot.network.z_to_index, 0)
    [eager] = evaluate_graphs(pot, [graph], forces=False)  # one pass, eager
    [deferred] = evaluate_graphs(pot, [graph])
    assert K.EDGE_INDEX not in deferred._d3_of[1]  # its edges are not kept

    def moved(pred):
        graph[K.POSITIONS] += 0.1 * torch.randn_like(graph[K.POSITIONS])  # in place
        graph[K.CELL] *= 1.02
        return pred.energies

    np.testing.assert_allclose(moved(deferred), eager.energies, rtol=0, atol=1e-12)
    assert abs(eager.energies.sum() - eager.energy) < 1e-9

    # planted: the deferred read keeping the live graph instead of a copy
    graph = atoms_to_graph(atoms, pot.cutoff, pot.network.z_to_index, 0)
    [deferred] = evaluate_graphs(pot, [graph])
    deferred._d3_of = (pot, graph)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(moved(deferred), eager.energies, rtol=0, atol=1e-12)


def test_the_old_every_call_pairwise_pass_is_caught(tiny_d3, monkeypatch):
    """Planted back, the calculator and predict asking simple-dftd3 for
    per-atom energies on every call (their behaviour before) fail the
    checks above: the spy sees a pairwise pass for energy, forces, stress."""
    _, pot = tiny_d3
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)

    def always(potential, graphs, stress, forces=True, energies=True):
        return d3_graphs(potential, graphs, stress, forces, energies=True)

    monkeypatch.setattr(calculator_module, "d3_graphs", always)
    # (the package's ``predict`` function hides its module's name)
    predict_module = importlib.import_module("sevenomni_core.batch.predict")
    monkeypatch.setattr(predict_module, "d3_graphs", always)
    asked = spy_on_simple_dftd3(monkeypatch)
    SevenOmniCalculator(pot).get_forces(atoms)
    with pytest.raises(AssertionError):
        assert asked == [False]
    asked.clear()
    predict([atoms], model=pot)
    with pytest.raises(AssertionError):
        assert asked == [False]
