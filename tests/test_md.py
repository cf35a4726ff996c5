"""Batched molecular dynamics against ASE's integrators and statistical mechanics."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.constraints import FixAtoms
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet
from scipy import stats

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.batch import md, predict, relax

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pot64():
    return load_model("7net-0", device="cpu", dtype="float64")


@pytest.fixture(scope="module")
def pot32():
    return load_model("7net-0", device="cpu", dtype="float32")


def _cu(rattle=0.05, seed=1):
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(rattle, seed=seed)
    return atoms


def _with_momenta(atoms, temperature, seed):
    rng = np.random.default_rng(seed)
    kt = units.kB * temperature
    p = rng.standard_normal((len(atoms), 3)) * np.sqrt(atoms.get_masses()[:, None] * kt)
    atoms.set_momenta(p)
    return atoms


def test_nve_and_langevin_match_ase(pot64):
    """100 NVE steps equal ASE's VelocityVerlet, 30 Langevin steps ASE's Langevin
    with the same random generator (float64, positions to 1e-6 Å)."""
    start = _with_momenta(_cu(), 300.0, 3)
    [ours] = md([start], model=pot64, ensemble="nve", timestep=2.0, steps=100)
    ref = start.copy()
    ref.calc = SevenOmniCalculator(pot64)
    VelocityVerlet(ref, 2.0 * units.fs).run(100)
    assert ours.ok and ours.steps == 100
    np.testing.assert_allclose(ours.atoms.positions, ref.positions, atol=1e-6)
    np.testing.assert_allclose(ours.atoms.get_momenta(), ref.get_momenta(), atol=1e-6)

    [ours] = md(
        [start],
        model=pot64,
        ensemble="nvt",
        temperature=500.0,
        timestep=2.0,
        steps=30,
        seed=[11],
        friction=0.02,
    )
    ref = start.copy()
    ref.calc = SevenOmniCalculator(pot64)
    Langevin(
        ref,
        2.0 * units.fs,
        temperature_K=500.0,
        friction=0.02 / units.fs,
        fixcm=False,
        rng=np.random.default_rng(11),
    ).run(30)
    np.testing.assert_allclose(ours.atoms.positions, ref.positions, atol=1e-6)
    # the sampled temperature is ASE's
    assert ours.temperature[-1] == pytest.approx(ref.get_temperature(), rel=1e-9)


def test_nve_conserves_energy(pot64):
    """Total energy drift of NVE at 1 fs, float64: below 1 meV/atom/ps."""
    start = _with_momenta(_cu(0.02), 300.0, 5)
    [r] = md([start], model=pot64, ensemble="nve", timestep=1.0, steps=200, interval=5)
    total = (r.potential_energy + r.kinetic_energy) / len(start)
    slope = np.polyfit(r.time / 1000.0, total, 1)[0]  # eV/atom/ps
    assert abs(slope) < 1e-3
    assert np.ptp(total) < 2e-3  # fluctuations of a 1 fs Verlet step
    assert np.ptp(r.kinetic_energy) > 10 * np.ptp(total * len(start))  # it moved


def test_langevin_samples_maxwell_boltzmann(pot32):
    """Langevin NVT of 8 Si cells at 600 K (friction 0.1/fs, samples 1/friction
    apart): mean temperature on target, and the kinetic energy 2K/kT follows
    the chi-squared law of 3N degrees of freedom."""
    cells = [bulk("Si") for _ in range(8)]
    target = 600.0
    out = md(
        cells,
        model=pot32,
        ensemble="nvt",
        temperature=target,
        timestep=2.0,
        steps=200,
        interval=5,
        friction=0.1,
        seed=list(range(8)),
    )
    assert all(r.ok for r in out)
    kin = np.concatenate([r.kinetic_energy[10:] for r in out])  # after 100 fs
    x = 2 * kin / (units.kB * target)
    dof = 3 * len(cells[0])
    assert len(x) == 8 * 31
    assert x.mean() == pytest.approx(dof, rel=0.12)  # about 3 standard errors
    assert stats.kstest(x, stats.chi2(dof).cdf).pvalue > 1e-3
    # the same kinetic energies at half the temperature do not pass
    assert stats.kstest(2 * x, stats.chi2(dof).cdf).pvalue < 1e-6


def test_batched_equals_single(pot64):
    """Three systems with their own ensemble, temperature, step and length give,
    in one batch, the trajectories each gives alone (same seeds)."""
    systems = [_cu(seed=1), _cu(seed=2), bulk("Si", cubic=True)]
    kwargs = {
        "ensemble": ["nve", "nvt", "npt"],
        "temperature": [200.0, 400.0, 300.0],
        "timestep": [1.0, 2.0, 1.5],
        "steps": [12, 20, 8],
        "seed": [4, 5, 6],
    }
    batched = md(systems, model=pot64, interval=4, taup=100.0, **kwargs)
    for i, atoms in enumerate(systems):
        one = {k: [v[i]] for k, v in kwargs.items()}
        [single] = md([atoms], model=pot64, interval=4, taup=100.0, **one)
        assert batched[i].steps == single.steps == kwargs["steps"][i]
        np.testing.assert_allclose(
            batched[i].atoms.positions, single.atoms.positions, atol=1e-9
        )
        np.testing.assert_allclose(
            batched[i].temperature, single.temperature, rtol=1e-8
        )
    assert batched[2].volume is not None and len(batched[2].volume) == 3


def test_npt_recovers_zero_pressure_volume(pot32):
    """Berendsen NPT at 5 K from strained cells ends at the volume of the cell
    relaxed to zero pressure (within 0.5 %) and near zero pressure, with the
    isotropic barostat and, from a sheared cell, the full-cell one (which
    also relaxes the deviatoric strain); both in one batch."""
    [relaxed] = relax([bulk("Cu", cubic=True)], model=pot32, relax_cell=True, fmax=1e-3)
    v0 = relaxed.atoms.get_volume()
    strains = [
        np.diag([1.02, 1.02, 1.02]),
        np.array([[1.03, 0.0, 0.0], [0.0, 1.0, 0.01], [0.0, 0.01, 0.99]]),
    ]
    starts = []
    for strain in strains:
        start = relaxed.atoms.copy()
        start.set_cell(start.cell.array @ strain, scale_atoms=True)
        starts.append(start)
    out = []
    for barostat, start in zip(["isotropic", "full"], starts, strict=True):
        out += md(
            [start],
            model=pot32,
            ensemble="npt",
            temperature=5.0,
            timestep=2.0,
            steps=200,
            interval=10,
            taup=40.0,
            compressibility=1 / 140.0,
            barostat=barostat,
            seed=[0],
        )
    for r in out:
        assert r.ok
        assert abs(r.volume[0] / v0 - 1) > 0.015  # it started away
        assert r.volume[-5:].mean() / v0 == pytest.approx(1.0, abs=5e-3)
        assert abs(r.pressure[-5:].mean()) < 0.5  # GPa
    before, after = starts[1].cell.array, out[1].atoms.cell.array
    assert abs(after[0, 0] - after[2, 2]) < 0.5 * abs(before[0, 0] - before[2, 2])


def test_fixed_atoms_trajectory_and_bad_inputs(pot32, tmp_path):
    """Fixed atoms stay put; the trajectory file holds every sampled frame; a
    negative temperature, an unknown ensemble, NPT of a molecule and a time
    step that blows up each fail alone with their reason."""
    slab = _cu() * (1, 1, 2)
    slab.set_constraint(FixAtoms(indices=[0, 1]))
    good = [slab, bulk("Si")]
    bad = [bulk("Cu"), bulk("Cu"), molecule("H2O"), _with_momenta(_cu(), 3000.0, 2)]
    out = md(
        good + bad,
        model=pot32,
        ensemble=["nvt", "nve", "nvt", "xyz", "npt", "nve"],
        temperature=[300.0, 300.0, -5.0, 300.0, 300.0, 300.0],
        timestep=[1.0, 1.0, 1.0, 1.0, 1.0, 60.0],
        steps=20,
        interval=5,
        trajectory=tmp_path,
    )
    assert [r.ok for r in out] == [True, True, False, False, False, False]
    assert "temperature (K) must be >= 0" in out[2].error
    assert "unknown ensemble 'xyz'" in out[3].error
    assert "NPT needs a fully periodic structure" in out[4].error
    assert "blew up at step" in out[5].error
    np.testing.assert_array_equal(out[0].atoms.positions[:2], slab.positions[:2])
    assert np.abs(out[0].atoms.positions[2:] - slab.positions[2:]).max() > 1e-3
    frames = read(out[0].trajectory, ":")
    assert len(frames) == len(out[0].time) == 5  # steps 0, 5, 10, 15, 20
    np.testing.assert_allclose(frames[-1].positions, out[0].atoms.positions)
    assert frames[-1].get_potential_energy() == pytest.approx(
        out[0].potential_energy[-1]
    )


def test_start_closer_than_the_floor_fails_alone(pot32):
    """Two atoms closer than ``min_distance`` at the start: that system fails
    before any step, naming the pair; the other runs."""
    close = Atoms("Cu2", positions=[[0, 0, 0], [0.8, 0, 0]], cell=[6, 6, 6], pbc=True)
    out = md([_cu(), close], model=pot32, steps=2, min_distance=1.0, seed=1)
    assert out[0].ok and not out[1].ok
    assert out[1].error == (
        "atoms too close at the start: atoms 0 and 1 are 0.8 Å apart (floor 1 Å)"
    )


@pytest.mark.slow
def test_crescale_samples_the_volume_fluctuations(pot32):
    """Stochastic cell rescaling at 300 K: the variance of the volume of 16
    Cu cells is k_B T V / B (B from the model's P(V) at 0 K) within 30 %;
    Berendsen suppresses it (measured here: 0.94 and 0.013 of it)."""
    [r] = relax([bulk("Cu", cubic=True)], model=pot32, relax_cell=True, fmax=1e-3)
    v0 = r.atoms.get_volume()
    pv = []
    for s in (0.99, 1.01):
        x = r.atoms.copy()
        x.set_cell(x.cell.array * s ** (1 / 3), scale_atoms=True)
        [p] = predict([x], model=pot32)
        pv.append((x.get_volume(), -np.mean(p.stress[:3])))
    bulk_modulus = -v0 * (pv[1][1] - pv[0][1]) / (pv[1][0] - pv[0][0])
    out = md(
        [r.atoms] * 16,
        model=pot32,
        ensemble="npt",
        temperature=300.0,
        timestep=2.0,
        steps=1000,
        interval=5,
        taup=100.0,
        compressibility=1 / 140.0,
        barostat="crescale",
        seed=list(range(16)),
    )
    volumes = np.array([o.volume for o in out])[:, 50:]  # after 500 steps
    expected = units.kB * 300.0 * volumes.mean() / bulk_modulus
    assert volumes.var(axis=1, ddof=1).mean() / expected == pytest.approx(1, abs=0.3)
