"""Widom insertion: exact averages, ideal and hard-sphere limits, model energies,
thermodynamic consistency, and bad input."""

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import write

from sevenomni_core import SevenOmniCalculator
from sevenomni_core.model import load_model
from sevenomni_flows import ModelSettings
from sevenomni_flows.properties.widom.averages import (
    EV_TO_KJ_PER_MOL,
    K_B,
    MIN_EFFECTIVE,
    R,
    averages,
    framework_density,
    insertions,
    overlapping,
)
from sevenomni_flows.properties.widom.insertions import insertion_energies
from sevenomni_flows.properties.widom.maker import WidomMaker

MOF = Path(__file__).resolve().parents[2] / "workflows" / "structures"
SETTINGS = ModelSettings(model="7net-0", device="cpu")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_boltzmann_averages_by_hand():
    """Four insertions, one overlapping, at 300 K, written out term by term."""
    delta_e = np.array([-0.3, -0.1, 0.0, np.inf])
    density = 1000.0
    kt = K_B * 300.0
    w = [math.exp(0.3 / kt), math.exp(0.1 / kt), 1.0, 0.0]
    k_h = sum(w) / 4 / (density * R * 300.0)
    mean = (-0.3 * w[0] - 0.1 * w[1]) / sum(w)
    q_st = R * 300.0 / 1000 - mean * EV_TO_KJ_PER_MOL
    got = averages(delta_e, 300.0, density)
    assert got.henry_coefficient == pytest.approx(k_h, rel=1e-12)
    assert got.mean_energy == pytest.approx(mean, rel=1e-12)
    assert got.heat_of_adsorption == pytest.approx(q_st, rel=1e-12)
    kish = sum(w) ** 2 / sum(x * x for x in w)
    assert got.effective_insertions == pytest.approx(kish, rel=1e-12)
    assert averages(np.full(3, np.inf), 300.0, density).effective_insertions == 0
    with pytest.raises(ValueError, match="temperature must be > 0 K"):
        averages(delta_e, 0.0, density)


def test_ideal_gas_limit():
    """No interaction: K_H = 1/(rho_f R T) exactly and Q_st = RT."""
    got = averages(np.zeros(1000), 298.0, 850.0)
    assert got.henry_coefficient == pytest.approx(1 / (850.0 * R * 298.0), rel=1e-12)
    assert got.henry_coefficient_error == pytest.approx(0.0, abs=1e-20)
    assert got.heat_of_adsorption == pytest.approx(R * 298.0 / 1000, rel=1e-12)
    assert got.effective_insertions == pytest.approx(1000, rel=1e-12)


def test_hard_sphere_box_excludes_its_volume():
    """One atom in a box, no interaction beyond its hard core: the overlap
    fraction is the excluded sphere's volume share, and K_H the ideal value
    times the free share, within the binomial error."""
    box = Atoms(
        "Ar", positions=[[1.0, 2.0, 3.0]], cell=np.diag([8.0, 9.0, 10.0]), pbc=True
    )
    guest = Atoms("He", positions=[[0, 0, 0]])
    placed = insertions(box, guest, 40000, np.random.default_rng(1))
    over = overlapping(box, guest.numbers, placed, hard_core=1.0)
    from ase.data import covalent_radii

    radius = covalent_radii[18] + covalent_radii[2]
    share = 4 / 3 * np.pi * radius**3 / box.get_volume()
    sigma = np.sqrt(share * (1 - share) / len(placed))
    assert abs(over.mean() - share) < 4 * sigma
    energies = np.where(over, np.inf, 0.0)
    density = framework_density(box)
    got = averages(energies, 300.0, density)
    ideal = 1 / (density * R * 300.0)
    assert got.henry_coefficient == pytest.approx(ideal * (1 - over.mean()))
    assert abs(got.henry_coefficient - ideal * (1 - share)) < 4 * sigma * ideal


def test_orientations_and_positions_are_uniform():
    """Centres uniform in the cell; molecular axes uniform on the sphere."""
    cell = Atoms(cell=[[10, 0, 0], [3, 9, 0], [1, 2, 11]], pbc=True)
    co2 = molecule("CO2")
    placed = insertions(cell, co2, 20000, np.random.default_rng(0))
    centre = placed.mean(axis=1)
    frac = np.linalg.solve(cell.cell.array.T, centre.T).T
    n = len(placed)
    assert np.abs(frac.mean(axis=0) - 0.5).max() < 4 * np.sqrt(1 / 12 / n)
    axis = placed[:, 2] - placed[:, 1]  # O to O
    axis /= np.linalg.norm(axis, axis=1)[:, None]
    assert np.abs((axis**2).mean(axis=0) - 1 / 3).max() < 0.01
    bond = np.linalg.norm(placed[:, 0] - placed[:, 1], axis=1)
    assert bond == pytest.approx(co2.get_distance(0, 1), abs=1e-9)  # rigid


@pytest.mark.parametrize("dispersion", [None, "d3bj"])
def test_batched_insertion_energies_equal_the_calculator(dispersion):
    """Energy-only batched passes equal single-point calculator energies
    (with D3: the rigid-host sum against the calculator's full one)."""
    from sevenomni_core.dispersion import with_dispersion
    from sevenomni_flows.adsorption.mofs import read_framework

    host = read_framework(str(MOF / "Mg-MOF-74.cif"))
    co2 = molecule("CO2")
    placed = insertions(host, co2, 40, np.random.default_rng(3))
    keep = ~overlapping(host, co2.numbers, placed)
    placed = placed[keep][:3]
    pot = load_model("7net-0", device="cpu")
    if dispersion:
        pot = with_dispersion(pot, dispersion)
    batched = insertion_energies(pot, None, host, co2, placed)
    calc = SevenOmniCalculator(pot)
    for positions, energy in zip(placed, batched, strict=True):
        atoms = host + co2
        atoms.positions[len(host) :] = positions
        atoms.calc = calc
        assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-4)


def test_a_failing_rigid_host_d3_fails_its_job_alone(monkeypatch):
    """In a shared batch, a framework whose D3 sum raises gets NaN (failed
    insertions, counted by its sample); the other framework's energies are
    those it gets alone."""
    from sevenomni_core.dispersion import RigidHostD3, with_dispersion
    from sevenomni_flows.adsorption.mofs import read_framework
    from sevenomni_flows.properties.widom.insertions import batched_energies

    host = read_framework(str(MOF / "Mg-MOF-74.cif"))
    co2 = molecule("CO2")
    placed = insertions(host, co2, 20, np.random.default_rng(3))
    placed = placed[~overlapping(host, co2.numbers, placed)][:2]
    pot = with_dispersion(load_model("7net-0", device="cpu"), "d3bj")
    alone = insertion_energies(pot, None, host, co2, placed)
    broken = host.copy()
    real = RigidHostD3.energies

    def energies(self, positions):
        if self is hosts[0]:
            raise RuntimeError("boom")
        return real(self, positions)

    hosts = []
    init = RigidHostD3.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        hosts.append(self)

    monkeypatch.setattr(RigidHostD3, "__init__", record)
    monkeypatch.setattr(RigidHostD3, "energies", energies)
    bad, good = batched_energies(
        pot, None, [(broken, co2, placed), (host, co2, placed)]
    )
    assert np.isnan(bad).all()
    np.testing.assert_allclose(good, alone, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def mof_widom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("widom")
    maker = WidomMaker(
        settings=SETTINGS,
        guests=["CO2", "N2"],
        temperatures=[298.0, 300.0],
        n_insertions=300,
        site_relaxations=2,
        site_relax={"max_steps": 40},
        plot_dir=str(folder),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return maker.run(str(MOF / "Mg-MOF-74.cif"), "Mg-MOF-74")


def test_co2_and_n2_in_mg_mof_74(mof_widom):
    """Both complete, with errors, overlap counts, selectivity and a plot;
    K_H(T) obeys van 't Hoff with the Q_st computed from the same sample."""
    co2, n2 = mof_widom
    for doc in (co2, n2):
        assert doc.state == "completed", doc.error
        assert doc.n_insertions == 300 and 0 < doc.overlap_fraction < 1
        assert len(doc.energies) == 300 - doc.n_overlapping - doc.n_unphysical
        assert doc.plots and Path(doc.plots[0]).exists()
        k1, k2 = doc.henry_coefficient
        q1, q2 = doc.heat_of_adsorption
        # d ln K_H / dT = -Q_st / (R T^2), over 298 -> 300 K
        slope = math.log(k2 / k1) / 2.0
        expected = -0.5 * (q1 + q2) * 1000 / (R * 299.0**2)
        assert slope == pytest.approx(expected, rel=0.02)
        assert doc.henry_coefficient_error[0] > 0
        # effective insertions: between one and every accepted insertion,
        # fewer at the lower temperature, and a warning exactly when few
        n_eff = doc.effective_insertions
        assert 1 <= n_eff[1] and n_eff[0] < n_eff[1] <= len(doc.energies)
        few = any("effective insertions <" in w for w in doc.warnings)
        assert few == (n_eff[0] < MIN_EFFECTIVE)
        # biased by default; a fixed count is judged, not extended
        assert doc.sampling == "biased" and len(doc.history) == 1
        assert doc.evaluations == 300 - doc.n_overlapping
        assert doc.converged == (doc.unconverged_reason is None)
        if not doc.converged:
            assert "after a fixed 300 insertions" in doc.unconverged_reason
        # the floor sits 10 kT (at 300 K) below the lowest relaxed site, or
        # below ΔE = 0 if no relaxed site binds (N2 here, without D3)
        assert len(doc.site_energies) == 2
        floor = min(min(doc.site_energies), 0.0) - 10 * K_B * 300.0
        assert doc.energy_floor == pytest.approx(floor)
        assert min(doc.energies) >= floor
        # the top-weighted geometries: framework + guest, heaviest first
        assert len(doc.top_geometries) == 5
        assert len(doc.top_geometries[0]) == 108 + {"CO2": 3, "N2": 2}[doc.guest]
        beta = 1 / (K_B * 298.0)
        w = dict(zip(doc.energies, doc.importance_weights, strict=False))
        u = [w[e] * math.exp(-beta * e) for e in doc.top_energies]
        assert u == sorted(u, reverse=True)
    assert co2.selectivity["N2"][0] == pytest.approx(
        co2.henry_coefficient[0] / n2.henry_coefficient[0]
    )


def test_targets_must_be_positive():
    """A convergence target of 0 or below is refused, naming its key."""
    with pytest.raises(ValueError, match=r"widom.target_error must be > 0"):
        WidomMaker(target_error=0.0)
    with pytest.raises(ValueError, match=r"widom.target_qst_error must be > 0"):
        WidomMaker(target_qst_error=-1.0)
    with pytest.raises(ValueError, match=r"widom.sampling must be one of"):
        WidomMaker(sampling="smart")
    with pytest.raises(ValueError, match=r"widom.learned_sites must be >= 0"):
        WidomMaker(learned_sites=-1)


def test_unconverged_at_a_tiny_maximum_is_completed_with_its_reason():
    """Rounds stop at max_insertions model evaluations: completed, converged
    false, the reason named; the history has the round."""
    maker = WidomMaker(
        settings=SETTINGS,
        guests=["CO2"],
        max_insertions=40,
        site_relaxations=1,
        site_relax={"max_steps": 10},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        [doc] = maker.run(str(MOF / "Mg-MOF-74.cif"), "Mg-MOF-74")
    assert doc.state == "completed" and doc.converged is False
    assert doc.evaluations == 40 and doc.history[-1]["evaluations"] == 40
    assert "at the maximum of 40 model evaluations" in doc.unconverged_reason
    assert any("not converged" in w for w in doc.warnings)


def test_bad_input_fails_alone(tmp_path):
    """Unknown guests and temperatures are refused; a disordered CIF and a
    framework with no pore each fail alone, the good framework completes."""
    with pytest.raises(ValueError, match="unknown adsorbate 'Xe2'"):
        WidomMaker(guests=["Xe2"])
    with pytest.raises(ValueError, match=r"widom.temperatures must be > 0 K"):
        WidomMaker(temperatures=[298.0, -5.0])
    with pytest.raises(ValueError, match="surface fragment"):
        WidomMaker(guests=["OH"])
    from pymatgen.core import Structure

    disordered = tmp_path / "disordered.cif"

    s = Structure.from_file(MOF / "Mg-MOF-74.cif")
    s.replace(0, {"Mg": 0.5, "Zn": 0.5})
    s.to(filename=str(disordered))
    dense = tmp_path / "copper.cif"
    write(dense, bulk("Cu", "fcc", a=3.61, cubic=True))
    maker = WidomMaker(
        settings=SETTINGS, guests=["CO2"], n_insertions=20, site_relaxations=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = [
            maker.run(str(path), path.stem)[0]
            for path in (disordered, dense, MOF / "Mg-MOF-74.cif")
        ]
    bad, full, good = docs
    assert bad.state == "failed" and "partially occupied site" in bad.error
    assert full.state == "failed" and "no pore accessible" in full.error
    assert good.state == "completed"


def test_graphs_do_not_follow_later_moves_of_their_atoms():
    """A graph keeps the positions it was built from (regression: batched
    insertions moved one Atoms object and all graphs followed, giving NaN)."""
    from sevenomni_core import _keys as K
    from sevenomni_core.data import atoms_to_graph

    atoms = molecule("CO2")
    graph = atoms_to_graph(atoms, 5.0, np.arange(119))
    before = graph[K.POSITIONS].clone()
    atoms.positions[:] += 1.0
    assert (graph[K.POSITIONS] == before).all()


def test_widom_through_a_spec(tmp_path, capsys):
    """framework_properties: [widom] runs it; query shows its fields; a
    rerun reuses it."""
    import json
    import shutil

    from sevenomni_flows.cli import main

    shutil.copy(MOF / "Mg-MOF-74.cif", tmp_path / "mof.cif")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "model: 7net-0\ndevice: cpu\nproperties: []\n"
        "frameworks:\n  - {file: mof.cif, name: Mg-MOF-74}\n"
        "framework_properties: [widom]\n"
        "widom: {guests: [N2], n_insertions: 20, temperatures: [298.0]}\n"
    )
    store = str(tmp_path / "results")
    assert main(["run", str(spec), "--store", store]) == 0
    capsys.readouterr()
    main(["query", '{"property": "widom"}', "--store", store, "--format", "json"])
    [row] = json.loads(capsys.readouterr().out)
    assert row["guest"] == "N2" and row["temperature"] == [298.0]
    assert row["henry_coefficient"][0] > 0 and row["dispersion"] is None
    assert main(["run", str(spec), "--store", store]) == 0
    assert "1 results reused" in capsys.readouterr().out


def test_one_changed_setting_changes_the_key():
    """Insertions, temperatures, hard core, seed or dispersion: a new key each."""
    maker = WidomMaker(settings=SETTINGS, guests=["N2"], n_insertions=20)
    item = maker.resolve(MOF / "Mg-MOF-74.cif", "Mg-MOF-74")
    pot, task = SETTINGS.potential()
    [base] = maker.targets(item, pot, task)
    for change in (
        {"n_insertions": 30},
        {"temperatures": [300.0]},
        {"hard_core": 0.8},
        {"seed": 1},
        {"floor_kt": 5.0},
        {"sampling": "uniform"},
        {"target_error": 0.05},
        {"max_insertions": 5000},
    ):
        other = WidomMaker(
            settings=SETTINGS, guests=["N2"], **({"n_insertions": 20} | change)
        )
        [target] = other.targets(item, pot, task)
        assert target.key != base.key, change
    d3 = ModelSettings(model="7net-0", device="cpu", dispersion="d3bj")
    pot3, task3 = d3.potential()
    [target] = WidomMaker(settings=d3, guests=["N2"], n_insertions=20).targets(
        item, pot3, task3
    )
    assert target.key != base.key


def test_failed_evaluations_leave_the_denominator(tmp_path, monkeypatch):
    """Insertions the model cannot evaluate are left out of the sample (zero
    weight would bias K_H low): K_H equals the by-hand average over the rest.
    More than 1% of evaluations failing fails the result, with the count."""
    from ase import Atoms

    import sevenomni_flows.properties.widom.maker as widom_job

    framework = tmp_path / "sparse.cif"
    grid = [[x, y, z] for x in (0, 6) for y in (0, 6) for z in (0, 6)]
    write(framework, Atoms("Mg8", positions=grid, cell=[12.0] * 3, pbc=True))
    real = widom_job.batched_energies
    n_bad = {"count": 0}

    def flaky(pot, task, jobs):
        out = real(pot, task, jobs)
        out[0][: n_bad["count"]] = np.nan
        return out

    monkeypatch.setattr(widom_job, "batched_energies", flaky)
    maker = WidomMaker(
        settings=SETTINGS, guests=["CO2"], n_insertions=1000, site_relaxations=0
    )
    for count in (4, 30):
        n_bad["count"] = count
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            [doc] = maker.run(str(framework), "sparse")
        evaluated = doc.n_insertions - doc.n_overlapping
        if count / evaluated > 0.01:
            assert doc.state == "failed" and doc.error_type == "EvaluationError"
            assert f"{count} of {evaluated} model evaluations" in doc.error
            continue
        assert doc.state == "completed" and doc.n_failed == count
        zero_weight = doc.n_overlapping + doc.n_unphysical
        sample = np.concatenate([doc.energies, np.full(zero_weight, np.inf)])
        weights = np.concatenate([doc.importance_weights, np.ones(zero_weight)])
        assert len(sample) == doc.n_insertions - count
        by_hand = averages(sample, 298.0, doc.framework_density, weights)
        assert doc.henry_coefficient[0] == pytest.approx(by_hand.henry_coefficient)
        with_zeros = averages(
            np.concatenate([sample, np.full(count, np.inf)]),
            298.0,
            doc.framework_density,
            np.concatenate([weights, np.ones(count)]),
        )
        assert doc.henry_coefficient[0] > with_zeros.henry_coefficient


def test_symmetry_copies_reach_every_equivalent_open_metal():
    """One CO2 pose at one Mg of the 108-atom Mg-MOF-74 cell (the primitive
    cell repeated along one axis, whose own lattice keeps 4 of the 12
    operations) is copied onto all 12 Mg: the copies are the 12 open-metal
    poses, axes turned with them."""
    from sevenomni_flows.adsorption.adsorbates import get_adsorbate
    from sevenomni_flows.adsorption.mofs import read_framework
    from sevenomni_flows.properties.adsorption import gas_molecule
    from sevenomni_flows.properties.widom.prescan import (
        open_metal_poses,
        periodic_distance,
        symmetric_copies,
    )

    host = read_framework(str(MOF / "Mg-MOF-74.cif"))
    poses = open_metal_poses(host, get_adsorbate("CO2"), gas_molecule("CO2"))
    assert len(host) == 108 and len(poses) == 12
    centres, axes = symmetric_copies(host)(poses[0][0][None], poses[0][1][None])
    assert len(centres) == 12
    cell = host.cell.array
    for centre, axis in poses:
        near = [periodic_distance(cell, centre, c) for c in centres]
        k = int(np.argmin(near))
        assert near[k] < 1e-6 and axes[k] == pytest.approx(axis, abs=1e-6)


def test_an_unbound_site_relaxation_does_not_raise_the_floor():
    """A site relaxation cut short above ΔE = 0 (3 steps, CH4 at an open
    metal) leaves the floor at or below −floor_kt·kT, so no physical
    insertion is excluded: K_H equals the uniform estimator's order."""
    maker = WidomMaker(
        settings=SETTINGS,
        guests=["CH4"],
        temperatures=[298.0],
        n_insertions=30,
        site_relaxations=1,
        site_relax={"max_steps": 3},
    )
    [doc] = maker.run(str(MOF / "Mg-MOF-74.cif"), "Mg-MOF-74")
    assert doc.state == "completed", doc.error
    assert max(doc.site_energies) > 0  # the relaxation ended unbound
    assert doc.energy_floor == pytest.approx(-10 * K_B * 298.0)
    assert doc.n_unphysical == 0 and doc.henry_coefficient[0] > 1e-10
