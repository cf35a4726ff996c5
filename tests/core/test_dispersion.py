"""DFT-D3 as a batched term of the model: parity with simple-dftd3 (the
``dftd3`` package), batching, finite differences, the unchanged default path,
and the task -> functional rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.io import read
from ase.units import Bohr, Hartree
from structures import bulk_si, molecule_ethanol, slab_with_adsorbate
from tiny import tiny_parity_potential

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.batch import predict, relax
from sevenomni_core.batch.predict import evaluate_graphs
from sevenomni_core.data import atoms_to_graph
from sevenomni_core.dispersion import (
    D3Config,
    d3_packed,
    evaluate_d3,
    functional_for_task,
    with_dispersion,
)
from sevenomni_core.model import SevenNet
from sevenomni_core.model.potential import Potential

dftd3 = pytest.importorskip("dftd3.interface")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]
E_TOL, F_TOL, S_TOL = 1e-5, 1e-4, 1e-5  # eV/atom, eV/Å, eV/Å³


def mof() -> Atoms:
    return read(ROOT / "workflows" / "structures" / "Mg-MOF-74.cif")


def benzene() -> Atoms:
    return molecule("C6H6")


def pt_slab() -> Atoms:
    slab = fcc111("Pt", (3, 3, 4), vacuum=8.0)  # pbc (True, True, False)
    slab.rattle(0.02, seed=4)
    return slab


STRUCTURES = {"mof": mof, "molecule": benzene, "slab": pt_slab, "bulk": bulk_si}


def oracle(atoms: Atoms, config: D3Config, functional: str = "pbe"):
    """simple-dftd3 with the same damping, parameters, cutoffs and terms:
    energy (eV), forces (eV/Å), stress (eV/Å³, ASE Voigt) or None."""
    periodic = bool(atoms.pbc.any())
    model = dftd3.DispersionModel(
        atoms.numbers,
        atoms.positions / Bohr,
        atoms.cell.array / Bohr if periodic else None,
        atoms.pbc if periodic else None,
    )
    model.set_realspace_cutoff(
        config.cutoff / Bohr, config.atm_cutoff / Bohr, config.cn_cutoff / Bohr
    )
    damping = {
        "d3bj": dftd3.RationalDampingParam,
        "d3zero": dftd3.ZeroDampingParam,
    }[config.damping]
    res = model.get_dispersion(damping(method=functional, atm=config.atm), grad=True)
    stress = None
    if periodic:
        sigma = res["virial"] * Hartree / atoms.get_volume()
        stress = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return res["energy"] * Hartree, -res["gradient"] * Hartree / Bohr, stress


def assert_matches(atoms, result, expected, e_tol=E_TOL, f_tol=F_TOL, s_tol=S_TOL):
    energy, forces, stress = expected
    assert abs(float(np.sum(result.energy)) - energy) / len(atoms) < e_tol
    np.testing.assert_allclose(result.forces, forces, rtol=0, atol=f_tol)
    if stress is None:
        assert result.stress is None
    else:
        np.testing.assert_allclose(result.stress, stress, rtol=0, atol=s_tol)


# ------------------------------------------------------- the D3 term alone


@pytest.mark.parametrize(
    ("name", "damping"),
    [(n, "d3bj") for n in STRUCTURES]
    + [(n, "d3zero") for n in ("molecule", "slab", "bulk")],
)
def test_d3_matches_simple_dftd3(name, damping):
    atoms = STRUCTURES[name]()
    config = D3Config(damping, functional="pbe")
    [res] = evaluate_d3(atoms, config, dtype="float64", backend="torch")
    expected = oracle(atoms, config)
    assert_matches(atoms, res, expected)
    assert abs(res.energies.sum() - res.energy[0]) < 1e-10
    # control: another functional's parameters miss the oracle by far more
    other = oracle(atoms, config, functional="rpbe")
    assert abs(other[0] - expected[0]) / len(atoms) > 100 * E_TOL


@pytest.mark.parametrize(
    ("make", "atm_cutoff"), [(benzene, 40 * Bohr), (bulk_si, 15 * Bohr)]
)
def test_three_body_term_matches_simple_dftd3(make, atm_cutoff):
    atoms = make()
    config = D3Config("d3bj", functional="pbe", atm=True, atm_cutoff=atm_cutoff)
    [res] = evaluate_d3(atoms, config, backend="torch")
    assert_matches(atoms, res, oracle(atoms, config))
    [two_body] = evaluate_d3(atoms, dataclasses.replace(config, atm=False))
    assert abs(res.energy[0] - two_body.energy[0]) > 1e-4  # ATM is really on


@pytest.mark.parametrize("atm", [False, True])
def test_energies_without_the_gradient_pass(atm):
    """``forces=False`` (energy-only callers such as Widom) skips the gradient
    pass, and the energies are those of the full evaluation."""
    structures = [benzene(), bulk_si()]
    config = D3Config("d3bj", functional="pbe", atm=atm, atm_cutoff=15 * Bohr)
    full = evaluate_d3(structures, config)
    energy_only = evaluate_d3(structures, config, forces=False)
    for a, b, atoms in zip(full, energy_only, structures, strict=True):
        assert b.forces is None and b.stress is None
        np.testing.assert_allclose(b.energy, a.energy, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b.energies, a.energies, rtol=0, atol=1e-12)
        assert abs(b.energy[0] - oracle(atoms, config)[0]) / len(atoms) < E_TOL
    args = ([6], [[0.0, 0.0, 0.0]], np.eye(3)[None], [[False] * 3], [1])
    with pytest.raises(ValueError, match="stress needs forces"):
        d3_packed(*args, [{}], config, torch.device("cpu"), torch.float64, True, False)


def _placements(host: Atoms, guest: Atoms, n: int, seed: int) -> np.ndarray:
    """Random rigid placements of ``guest`` anywhere (also across the cell's
    faces, where periodic images meet)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = guest.copy()
        g.rotate(rng.uniform(0, 360), rng.normal(size=3), center="COM")
        g.positions += rng.uniform(-0.2, 1.2, size=3) @ host.cell.array
        out.append(g.positions.copy())
    return np.array(out)


@pytest.mark.parametrize(
    ("host", "guest", "damping"),
    [
        (mof, lambda: molecule("CO2"), "d3bj"),
        # a one-atom triclinic host: the guest's own images lie within 3 Å
        (lambda: bulk("Cu", "fcc", a=3.6), lambda: molecule("CO"), "d3zero"),
    ],
)
def test_rigid_host_equals_the_full_sum(host, guest, damping):
    """Widom's rigid-host D3 (host pairs folded into a quadratic form once)
    gives the full sum's energy of host + guest, images included."""
    from sevenomni_core.dispersion import RigidHostD3

    host, guest = host(), guest()
    config = D3Config(damping, functional="pbe")
    d3 = RigidHostD3(host, guest.numbers, config, config.parameters(None))
    placed = _placements(host, guest, 4, seed=1)
    got = d3.energies(placed)
    for positions, energy in zip(placed, got, strict=True):
        atoms = host + Atoms(guest.numbers, positions)
        [full] = evaluate_d3(atoms, config, dtype="float64", backend="torch")
        assert energy == pytest.approx(full.energy[0], abs=1e-9)
    atoms = host + Atoms(guest.numbers, placed[0])
    assert abs(got[0] - oracle(atoms, config)[0]) / len(atoms) < E_TOL
    # control: the guest's contribution is far above the tolerance
    [alone] = evaluate_d3(host, config, dtype="float64")
    assert abs(got[0] - alone.energy[0]) > 1e-3


def test_rigid_host_refuses_what_it_cannot_do():
    from sevenomni_core.dispersion import RigidHostD3

    config = D3Config("d3bj", functional="pbe")
    with pytest.raises(ValueError, match="three-body"):
        RigidHostD3(bulk_si(), [8], D3Config("d3bj", functional="pbe", atm=True), {})
    with pytest.raises(ValueError, match="periodic in 3D"):
        RigidHostD3(pt_slab(), [8], config, config.parameters(None))
    d3 = RigidHostD3(bulk_si(), [6, 8], config, config.parameters(None))
    with pytest.raises(ValueError, match=r"shape \(n, 2, 3\)"):
        d3.energies(np.zeros((4, 3, 3)))


def test_float32_on_cpu():
    atoms = pt_slab()
    config = D3Config("d3bj", functional="pbe")
    [res] = evaluate_d3(atoms, config, dtype="float32", backend="torch")
    assert_matches(atoms, res, oracle(atoms, config), 1e-5, 1e-4, 1e-5)


def test_batched_equals_single():
    structures = [pt_slab(), benzene(), bulk_si(), slab_with_adsorbate()]
    config = D3Config("d3zero", functional="pbe")
    batched = evaluate_d3(structures, config, backend="torch")
    for atoms, got in zip(structures, batched, strict=True):
        [alone] = evaluate_d3(atoms, config, backend="torch")
        np.testing.assert_allclose(got.energy, alone.energy, rtol=0, atol=1e-10)
        np.testing.assert_allclose(got.forces, alone.forces, rtol=0, atol=1e-10)
        if alone.stress is not None:
            np.testing.assert_allclose(got.stress, alone.stress, rtol=0, atol=1e-12)


class D3Only(Calculator):
    """The D3 term's torch path as an ASE calculator, for ASE's finite
    differences (simple-dftd3's derivatives are its own, and the two paths
    agree: ``test_d3_backends.py``)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]  # noqa: RUF012

    def __init__(self, config: D3Config):
        super().__init__()
        self.config = config

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        [res] = evaluate_d3(self.atoms, self.config, backend="torch")
        energy = float(res.energy[0])
        self.results = {"energy": energy, "free_energy": energy, "forces": res.forces}
        if res.stress is not None:
            self.results["stress"] = res.stress


@pytest.mark.parametrize(
    ("damping", "atm", "make"),
    [("d3bj", True, bulk_si), ("d3zero", False, bulk_si), ("d3bj", False, pt_slab)],
)
def test_forces_and_stress_are_derivatives(damping, atm, make):
    atoms = make()
    if len(atoms) > 12:
        atoms = atoms[:12]  # a thinner slab, same cell
    config = D3Config(
        damping,
        functional="pbe",
        cutoff=25 * Bohr,
        cn_cutoff=20 * Bohr,
        atm=atm,
        atm_cutoff=12 * Bohr,
    )
    calc = D3Only(config)
    atoms.calc = calc
    forces, stress = atoms.get_forces(), atoms.get_stress()
    np.testing.assert_allclose(
        forces, calculate_numerical_forces(atoms, eps=1e-4), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        stress, calculate_numerical_stress(atoms, eps=1e-5), rtol=0, atol=1e-6
    )
    assert np.abs(forces).max() > 1e-3 and np.abs(stress).max() > 1e-4


# ------------------------------------------------ attached to the model


@pytest.fixture(scope="module")
def seven_net_0():
    return load_model("7net-0", device="cpu", dtype="float64")


def test_calculator_adds_the_oracle(seven_net_0):
    """Calculator with D3 = calculator without + simple-dftd3 (PBE for 7net-0)."""
    plain = SevenOmniCalculator(seven_net_0)
    with_d3 = SevenOmniCalculator(seven_net_0, dispersion="d3bj")
    config = with_d3.potential.dispersion
    for make in (bulk_si, slab_with_adsorbate, molecule_ethanol):
        atoms = make()
        e0, f0 = plain.get_potential_energy(atoms), plain.get_forces(atoms)
        e1, f1 = with_d3.get_potential_energy(atoms), with_d3.get_forces(atoms)
        energy, forces, stress = oracle(atoms, config)
        assert abs(e1 - e0 - energy) / len(atoms) < E_TOL
        np.testing.assert_allclose(f1 - f0, forces, rtol=0, atol=F_TOL)
        assert abs(with_d3.get_property("energies", atoms).sum() - e1) < 1e-8
        if stress is not None:
            s1, s0 = with_d3.get_stress(atoms), plain.get_stress(atoms)
            np.testing.assert_allclose(s1 - s0, stress, rtol=0, atol=S_TOL)
    record = with_d3.parameters["dispersion"]
    assert record["damping"] == "d3bj" and record["functional"] == "pbe"
    assert record["atm"] is False and record["cutoff"] == pytest.approx(60 * Bohr)
    assert "dispersion" not in plain.parameters
    assert "dispersion='d3bj'" in repr(with_d3)


def test_predict_batched_equals_single_and_calculator(seven_net_0):
    structures = [slab_with_adsorbate(), molecule_ethanol(), bulk_si()]
    batched = predict(structures, model=seven_net_0, dispersion="d3bj")
    calc = SevenOmniCalculator(seven_net_0, dispersion="d3bj")
    for atoms, got in zip(structures, batched, strict=True):
        [alone] = predict([atoms], model=seven_net_0, dispersion="d3bj")
        assert abs(got.energy - alone.energy) < 1e-9
        np.testing.assert_allclose(got.forces, alone.forces, rtol=0, atol=1e-9)
        assert abs(got.energy - calc.get_potential_energy(atoms)) < 1e-8
        np.testing.assert_allclose(got.forces, calc.get_forces(atoms), atol=1e-8)
        if atoms.pbc.any():
            np.testing.assert_allclose(got.stress, calc.get_stress(atoms), atol=1e-9)


def test_without_dispersion_results_are_unchanged(seven_net_0):
    """No keyword, ``dispersion=None`` and the bare network agree bit for bit."""
    pot = seven_net_0
    structures = [bulk_si(), slab_with_adsorbate(), molecule_ethanol()]
    default = predict(structures, model=pot)
    none = predict(structures, model=pot, dispersion=None)
    stripped = predict(structures, model=with_dispersion(pot, None))
    d3 = predict(structures, model=pot, dispersion="d3bj")
    for atoms, a, b, c, d in zip(structures, default, none, stripped, d3, strict=True):
        for p in (b, c):
            assert p.energy == a.energy
            assert np.array_equal(p.forces, a.forces)
            assert np.array_equal(p.energies, a.energies)
            assert (p.stress is None) == (a.stress is None)
            assert p.stress is None or np.array_equal(p.stress, a.stress)
        assert d.energy != a.energy  # the keyword is not a no-op
        # one structure alone: exactly the network's own output
        graph = atoms_to_graph(atoms, pot.cutoff, pot.network.z_to_index)
        out = pot.network(graph, compute_forces=True, compute_stress=True)
        forces = out["forces"].detach().double().numpy()
        [alone] = predict([atoms], model=pot, dispersion=None)
        assert alone.energy == float(out["energy"].detach().double()[0])
        assert np.array_equal(alone.forces, forces)
        for calc in (
            SevenOmniCalculator(pot),
            SevenOmniCalculator(pot, dispersion=None),
        ):
            assert calc.get_potential_energy(atoms) == float(out["energy"].item())
            assert np.array_equal(calc.get_forces(atoms), forces)


def test_with_dispersion_shares_the_network_and_keeps_the_cache(seven_net_0):
    pot = with_dispersion(seven_net_0, "d3zero", functional="revpbe", atm=True)
    assert pot.network is seven_net_0.network and pot is not seven_net_0
    assert seven_net_0.dispersion is None
    assert load_model("7net-0", device="cpu", dtype="float64") is seven_net_0
    record = pot.describe()["dispersion"]
    assert (record["damping"], record["functional"], record["atm"]) == (
        "d3zero",
        "revpbe",
        True,
    )
    assert "dispersion" not in seven_net_0.describe()


def test_float32_model_with_dispersion():
    pot = load_model("7net-0", device="cpu", dtype="float32")
    atoms = slab_with_adsorbate()
    [got] = predict([atoms], model=pot, dispersion="d3bj")
    [plain] = predict([atoms], model=pot)
    energy, forces, stress = oracle(atoms, D3Config("d3bj"))
    assert abs(got.energy - plain.energy - energy) / len(atoms) < 1e-5
    np.testing.assert_allclose(got.forces - plain.forces, forces, atol=1e-4)
    np.testing.assert_allclose(got.stress - plain.stress, stress, atol=1e-5)


# --------------------------------------------- tasks, functionals, errors


@pytest.fixture(scope="module")
def omni() -> Potential:
    """A tiny random multi-task model whose tasks are SevenNet-Omni names."""
    base = tiny_parity_potential(torch.float64)
    config = dataclasses.replace(
        base.network.config, task_map={"mpa": 0, "odac23": 1, "oc20": 2}
    )
    torch.manual_seed(1)
    net = SevenNet(config, shift=torch.randn(3, 4), scale=torch.ones(4) * 1.5)
    net = net.double().eval()
    return Potential(
        "tiny-omni", Path("tiny"), "0" * 64, net, "mpa", dtype=torch.float64
    )


def test_task_functional_table():
    assert functional_for_task(None) == "pbe"  # single-task models (7net-0)
    for task in ("mpa", "omat24", "matpes_pbe", "PBE"):
        assert functional_for_task(task) == "pbe"
    assert functional_for_task("oc20") == "rpbe"
    for task in ("matpes_r2scan", "mp_r2scan", "R2SCAN"):
        assert functional_for_task(task) == "r2scan"
    with pytest.raises(ValueError, match="not known"):
        functional_for_task("my_new_task")
    for task in ("odac23", "spice", "omol25_low", "omol25_high"):
        with pytest.raises(ValueError, match="twice"):
            functional_for_task(task)
    assert D3Config("d3bj").parameters("R2SCAN")["a1"] == pytest.approx(0.49484001)
    assert D3Config("d3bj").parameters("oc20")["a1"] == pytest.approx(0.1820)


def test_tasks_pick_their_functional_and_refuse_double_counting(omni):
    pot = omni
    co = molecule("CO")
    slab = fcc111("Cu", (2, 2, 2), vacuum=6.0)
    out = predict([slab, co], model=pot, task=["mpa", "oc20"], dispersion="d3bj")
    plain = predict([slab, co], model=pot, task=["mpa", "oc20"])
    for atoms, got, ref, functional in zip(
        [slab, co], out, plain, ["pbe", "rpbe"], strict=True
    ):
        [d3] = evaluate_d3(atoms, "d3bj", functional=functional)
        assert got.energy - ref.energy == pytest.approx(d3.energy[0], abs=1e-10)
    with pytest.raises(ValueError, match="twice"):
        predict([co], model=pot, task="odac23", dispersion="d3bj")
    with pytest.raises(ValueError, match="twice"):
        SevenOmniCalculator(pot, task="odac23", dispersion="d3bj")
    forced = D3Config("d3bj", functional="pbe", force=True)
    calc = SevenOmniCalculator(pot, task="odac23", dispersion=forced)
    assert calc.parameters["dispersion"]["functional"] == "pbe"
    assert np.isfinite(calc.get_potential_energy(co.copy()))


def test_relax_and_evaluate_graphs_include_dispersion(omni):
    """``relax`` (unchanged) evaluates through ``evaluate_graphs``: it sees D3."""
    pot = with_dispersion(omni, "d3bj")
    co = molecule("CO")
    graph = atoms_to_graph(co, pot.cutoff, pot.network.z_to_index, 0)
    [with_d3] = evaluate_graphs(pot, [graph])
    [bare] = evaluate_graphs(with_dispersion(pot, None), [graph])
    [d3] = evaluate_d3(co, "d3bj", functional="pbe")
    assert with_d3.energy - bare.energy == pytest.approx(d3.energy[0], abs=1e-10)
    [energy_only] = evaluate_graphs(pot, [graph], forces=False)  # as Widom asks
    assert energy_only.energy == pytest.approx(with_d3.energy, abs=1e-10)
    assert energy_only.forces is None
    [res] = relax([co], model=pot, max_steps=3, fmax=1e-6)
    calc = SevenOmniCalculator(pot)
    assert res.energy == pytest.approx(calc.get_potential_energy(res.atoms), abs=1e-8)


def test_errors(omni):
    with pytest.raises(ValueError, match="unknown dispersion damping"):
        D3Config("d4")
    with pytest.raises(ValueError, match="unknown dispersion damping"):
        SevenOmniCalculator(omni, dispersion="d3bjm")
    with pytest.raises(TypeError):
        with_dispersion(omni, 3)
    with pytest.raises(ValueError, match="cutoff must be positive"):
        D3Config("d3bj", cutoff=0.0)
    with pytest.raises(ValueError, match="no D3 d3zero parameters"):
        D3Config("d3zero").parameters("r2scan")  # r2SCAN has BJ only
    with pytest.raises(ValueError, match="not known"):
        with_dispersion(tiny_parity_potential(), "d3bj")  # tasks a, b, c


@pytest.mark.gpu
def test_cuda_keyword_reaches_the_device():
    """The device is an argument: the config runs wherever the model is."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    [cpu] = evaluate_d3(bulk("Cu"), "d3bj")
    [gpu] = evaluate_d3(bulk("Cu"), "d3bj", device="cuda")
    np.testing.assert_allclose(gpu.forces, cpu.forces, atol=1e-10)
    assert gpu.energy[0] == pytest.approx(cpu.energy[0], abs=1e-10)
