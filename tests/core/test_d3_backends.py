"""D3's two paths: simple-dftd3 on the CPU (the default there) and the
batched torch path (GPUs, or without the ``dftd3`` package).

The oracle is simple-dftd3 called as its own users call it: parameters from
its table by functional name, ASE's unit constants.  The delegated path is
handed our parameters, cutoffs and units, so this checks that hand-over."""

from __future__ import annotations

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

import sevenomni_core.dispersion._d3 as d3_module
from sevenomni_core.batch import relax
from sevenomni_core.batch.predict import evaluate_graphs
from sevenomni_core.data import atoms_to_graph
from sevenomni_core.dispersion import (
    D3Config,
    d3_backend,
    evaluate_d3,
    with_dispersion,
)

dftd3 = pytest.importorskip("dftd3.interface")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[2]


def mof_co2() -> Atoms:
    """Mg-MOF-74 (162 atoms) with a CO2 in its channel: 165 atoms."""
    mof = read(ROOT / "workflows" / "structures" / "Mg-MOF-74.cif")
    co2 = molecule("CO2")
    co2.positions += mof.cell.array.sum(0) / 2
    return mof + co2


def pt_slab_256() -> Atoms:
    """Pt(111), 8x8x4 = 256 atoms, 8 Å vacuum, pbc (True, True, False)."""
    slab = fcc111("Pt", (8, 8, 4), vacuum=8.0)
    slab.rattle(0.02, seed=3)
    return slab


SYSTEMS = {"mof": mof_co2, "slab": pt_slab_256}


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
