"""Quasi-harmonic approximation against phonopy's QHA driven by sevenn's
calculator, one structure at a time; bad settings and imaginary modes."""

import numpy as np
import pytest
from ase.build import bulk
from oracle.phonopy_qha import phonopy_qha
from phonopy.structure.atoms import PhonopyAtoms
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core import load_model
from sevenomni_flows.jobs import ModelSettings
from sevenomni_flows.properties import QhaMaker
from sevenomni_flows.properties import qha as qha_module
from sevenomni_flows.properties.phonon import CUTOFF_FREQUENCY
from sevenomni_flows.properties.qha import RANGE_TOLERANCE, scaled_copy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SUPERCELL = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
# Si's small thermal expansion used to move 5-10% between float32, float64
# and pipelines: the acoustic modes at Γ, not force noise (see
# CUTOFF_FREQUENCY); with them cut, ours and phonopy's agree to 0.06% (Si is
# in test_qha_cells.py, slow)
SOLIDS = {"MgO": bulk("MgO", "rocksalt", a=4.21), "Cu": bulk("Cu", "fcc", a=3.62)}


def test_qha_matches_phonopy_driven_by_sevenn(sevenn_calculator):
    """MgO and Cu in one batched job: V(T) within 0.1% and the thermal
    expansion at 300 K within 2% of phonopy's QHA with sevenn's calculator."""
    # 0.03 Å displacements: with 0.01 Å, float32 force noise alone moves the
    # small thermal expansion of Si by ~2% (sevenn's as much as ours)
    maker = QhaMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        phonon={"supercell": SUPERCELL, "displacement": 0.03},
        temperatures={"t_max": 800.0},
        pressures=[0.0, 2.0],
    )
    structures = [AseAtomsAdaptor.get_structure(a) for a in SOLIDS.values()]
    docs = maker.run(structures, list(SOLIDS))
    assert len(docs) == 4  # two pressures each
    calc = sevenn_calculator(load_model("7net-0").path)
    for name, atoms in SOLIDS.items():
        ours = next(d for d in docs if d.label == name and d.pressure == 0.0)
        high = next(d for d in docs if d.label == name and d.pressure == 2.0)
        assert ours.state == "completed", ours.error
        assert not ours.imaginary_modes
        ref = phonopy_qha(
            atoms, maker, calc, SUPERCELL, cutoff_frequency=CUTOFF_FREQUENCY
        )
        n = len(ours.temperatures)
        ref_volume = np.asarray(ref.volume_temperature)[:n] / len(atoms)
        np.testing.assert_allclose(ours.volume, ref_volume, rtol=1e-3)
        ref_alpha = np.asarray(ref.thermal_expansion)[:n]
        at = ours.temperatures.index(300.0)
        assert ours.thermal_expansion_300k == pytest.approx(ref_alpha[at], rel=0.02)
        assert ours.thermal_expansion_300k > 0
        # physics: volume grows with T; pressure shrinks it and stiffens it
        assert ours.volume[at] > ours.volume[0]
        assert high.volume_300k < ours.volume_300k
        assert high.bulk_modulus_300k > ours.bulk_modulus_300k


@pytest.mark.parametrize(
    ("setting", "value", "why"),
    [
        ("n_volumes", 3, "qha.n_volumes must be >= 5"),
        ("linear_strain", [0.01, 0.03], "qha.linear_strain"),
        ("pressures", [-1.0], "qha.pressures must be >= 0"),
        ("temperatures", {"t_max": 200.0}, r"qha\.temperatures\.t_max must exceed"),
        ("temperatures", [100.0, 300.0], r"qha\.temperatures: .* grid from 0 K"),
        ("phonon", {"supercell": [[2, 0]]}, r"qha\.phonon\.supercell: must be a 3x3"),
        ("relax", {"fmax": 0}, r"qha\.relax\.fmax: Input should be greater than 0"),
        ("eos", "spline", "qha.eos must be"),
    ],
)
def test_bad_settings_name_the_key(setting, value, why):
    with pytest.raises(ValueError, match=why):
        QhaMaker(**{setting: value})


def test_imaginary_modes_fail_with_the_volumes(monkeypatch):
    """A lattice that is unstable at some volume (here every atom pushed
    toward its neighbours' midpoints: negative force constants) gives a
    failed document naming the volumes and frequencies; the other material
    of the batch completes."""
    from sevenomni_flows.properties import phonon as phonon_module

    real = phonon_module.set_forces

    def softened(phonon, preds):
        errors = real(phonon, preds)
        if len(phonon.supercell) == 8:  # Cu 2x2x2: flip its force constants
            phonon.forces = -np.asarray(phonon.forces)
        return errors

    monkeypatch.setattr("sevenomni_flows.properties.qha.set_forces", softened)
    maker = QhaMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        phonon={"supercell": SUPERCELL},
        temperatures={"t_max": 400.0},
        n_volumes=5,
    )
    structures = [AseAtomsAdaptor.get_structure(a) for a in SOLIDS.values()]
    si, cu = maker.run(structures, list(SOLIDS))
    assert si.state == "completed"
    assert cu.state == "failed" and cu.error_type == "ImaginaryModes"
    assert "imaginary modes at 5 of 5 volumes" in cu.error
    assert len(cu.imaginary_modes) == 5
    assert all(m["min_frequency"] < -0.05 for m in cu.imaginary_modes)


def _narrow(**settings) -> QhaMaker:
    """Cu sampled over +-3% of its volume (or less), 8-atom supercells."""
    return QhaMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        phonon={"supercell": SUPERCELL, "displacement": 0.03},
        n_volumes=5,
        **{"temperatures": {"t_max": 1000.0}, **settings},
    )


def test_no_extrapolation_beyond_the_sampled_volumes():
    """Where V(T) leaves the sampled volumes the lists stop, with a warning;
    a document whose V at 300 K (or already at 0 K, 30 GPa) lies outside
    fails, naming the pressure and the range; none is ever extrapolated."""
    cu = AseAtomsAdaptor.get_structure(SOLIDS["Cu"])
    maker = _narrow(linear_strain=[-0.01, 0.01], pressures=[0.0, 30.0])
    low, high = maker.run([cu], ["Cu"])
    assert low.state == "completed", low.error
    assert 300.0 < low.t_max_valid < 990.0  # Cu leaves +3% at 650 K
    assert low.temperatures[-1] == low.t_max_valid
    assert min(low.volumes) <= min(low.volume) <= max(low.volume) <= max(low.volumes)
    [warning] = low.warnings
    assert "0.0 GPa" in warning and f"stop at {low.t_max_valid:g} K" in warning
    assert high.state == "failed" and high.error_type == "VolumeOutOfRange"
    sampled = f"[{min(high.volumes):.3f}, {max(high.volumes):.3f}] Å³/atom"
    assert "at 30.0 GPa" in high.error and sampled in high.error
    assert "from 0 K" in high.error and high.volume_300k is None
    # up to +0.6% only: Cu leaves it below 300 K
    [short] = _narrow(linear_strain=[-0.01, 0.002]).run([cu], ["Cu"])
    assert short.state == "failed" and short.error_type == "VolumeOutOfRange"
    assert "300 K would be extrapolated" in short.error
    assert short.t_max_valid < 300.0 and short.thermal_expansion_300k is None


def test_without_the_guard_30_gpa_is_extrapolated(monkeypatch):
    """The guard planted out: at 30 GPa the document completes, its volume at
    300 K far below every sampled volume (the old silent extrapolation)."""
    monkeypatch.setattr(
        "sevenomni_flows.properties.qha.first_outside", lambda v, s: None
    )
    cu = AseAtomsAdaptor.get_structure(SOLIDS["Cu"])
    [doc] = _narrow(linear_strain=[-0.01, 0.01], pressures=[30.0]).run([cu], ["Cu"])
    assert doc.state == "completed" and not doc.warnings
    assert doc.volume_300k < 0.95 * min(doc.volumes)
    with pytest.raises(AssertionError):
        assert min(doc.volumes) <= doc.volume_300k <= max(doc.volumes)


def test_a_failed_eos_fit_fails_its_pressure_alone(monkeypatch):
    """phonopy's EOS fit of G(V) failing at one pressure (it raises, or
    would leave that temperature out) fails that pressure's document, naming
    it; the other pressure of the same phonons completes."""

    real = qha_module.PhonopyQHA

    def fragile(**kwargs):
        if kwargs["pressure"] == 2.0:
            raise RuntimeError("Met difficulty in fitting to EOS.")
        return real(**kwargs)

    monkeypatch.setattr(qha_module, "PhonopyQHA", fragile)
    cu = AseAtomsAdaptor.get_structure(SOLIDS["Cu"])
    maker = _narrow(
        linear_strain=[-0.02, 0.03], pressures=[0.0, 2.0], temperatures={"t_max": 400.0}
    )
    zero, two = maker.run([cu], ["Cu"])
    assert zero.state == "completed", zero.error
    assert two.state == "failed" and two.error_type == "EosFitError"
    assert "at 2.0 GPa" in two.error and "Met difficulty" in two.error


def test_a_failed_displaced_supercell_fails_its_material_alone(monkeypatch):
    """One displaced Cu supercell runs out of memory: Cu's documents fail
    with a transient OutOfMemoryError naming the volume (not a RuntimeError
    raised through the job), and MgO in the same batch completes."""
    from sevenomni_core import batch as qha_module  # where the Maker finds predict
    from sevenomni_core.batch import Prediction

    real = qha_module.predict

    def one_fails(atoms, **kwargs):
        preds = real(atoms, **kwargs)
        first = next(i for i, a in enumerate(atoms) if "Cu" in a.symbols)
        preds[first] = Prediction(error="out of memory for this structure alone")
        return preds

    monkeypatch.setattr(qha_module, "predict", one_fails)
    structures = [AseAtomsAdaptor.get_structure(a) for a in SOLIDS.values()]
    mgo, cu = _narrow(linear_strain=[-0.02, 0.03], temperatures={"t_max": 400.0}).run(
        structures, list(SOLIDS)
    )
    assert mgo.state == "completed", mgo.error
    assert cu.state == "failed" and cu.error_type == "OutOfMemoryError"
    assert cu.transient is True
    assert "a displaced supercell at" in cu.error and "Å³/atom" in cu.error


def _default_range(**settings) -> QhaMaker:
    """The default strains and volumes, cheap supercells, 0-400 K."""
    return QhaMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        phonon={"supercell": SUPERCELL, "displacement": 0.03},
        temperatures={"t_max": 400.0},
        **settings,
    )


RANGE = {"MgO": bulk("MgO", "rocksalt", a=4.25), "Si": bulk("Si", "diamond", a=5.46)}


def test_an_alpha_that_depends_on_the_range_is_flagged():
    """At the default range [-0.02, 0.03], each document records α(300 K)
    from its 5 volumes nearest V(300 K) and warns where that differs from
    all 7 volumes' by over RANGE_TOLERANCE: MgO's F(V) is smooth (a few %
    apart, no warning); Si's α, a small difference of large terms, moves by
    over half (warned).  phonopy fits both sets (our numbers are its
    PhonopyQHA's on the same F(V)): the spread is the method's sensitivity
    to the range, which the document now says."""
    structures = [AseAtomsAdaptor.get_structure(a) for a in RANGE.values()]
    mgo, si = _default_range().run(structures, list(RANGE))
    for doc in (mgo, si):
        assert doc.state == "completed", doc.error
        print(
            f"\n{doc.label} α_V(300 K) {doc.thermal_expansion_300k:.4g}, central 5 "
            f"{doc.thermal_expansion_300k_subrange:.4g}"
        )
    assert not mgo.warnings
    ratio = mgo.thermal_expansion_300k_subrange / mgo.thermal_expansion_300k
    assert abs(ratio - 1) < RANGE_TOLERANCE
    [warning] = si.warnings
    assert "α(300 K) depends on the sampled range" in warning
    assert "qha.linear_strain" in warning and "from the 5 nearest" in warning
    assert abs(si.thermal_expansion_300k_subrange / si.thermal_expansion_300k - 1) > 0.5


def test_without_the_range_check_si_is_silent(monkeypatch):
    """The check planted out (tolerance infinite): Si's document completes
    with no warning, its range dependence unseen."""
    monkeypatch.setattr(qha_module, "RANGE_TOLERANCE", float("inf"))
    si = AseAtomsAdaptor.get_structure(RANGE["Si"])
    [doc] = _default_range().run([si], ["Si"])
    assert doc.state == "completed" and not doc.warnings
    with pytest.raises(AssertionError):
        assert doc.warnings


def test_cu_alpha_depends_on_the_range():
    """Cu with 7net-0: α_V(300 K) from the default [-0.02, 0.03] is ~18%
    above ±0.01's (Vinet, Birch-Murnaghan and Murnaghan fits of the same
    F(V) by phonopy agree within 0.3%, and 21 volumes over the default
    range give the default's value: it is the range, through a vibrational
    F(V) that is not one smooth EOS, not the fit or the sampling).  ±0.01
    agrees with its own central volumes, and with the Grüneisen α
    (test_gruneisen.py); measured α_V is 4.95e-5 /K (3 x 16.5e-6)."""
    cu = AseAtomsAdaptor.get_structure(SOLIDS["Cu"])
    [wide] = _default_range().run([cu], ["Cu"])
    [narrow] = _default_range(linear_strain=[-0.01, 0.01]).run([cu], ["Cu"])
    print(
        f"\nCu α_V(300 K): {wide.thermal_expansion_300k:.4g} ([-0.02, 0.03]; "
        f"central 5: {wide.thermal_expansion_300k_subrange:.4g}), "
        f"{narrow.thermal_expansion_300k:.4g} (±0.01; central 5: "
        f"{narrow.thermal_expansion_300k_subrange:.4g}); measured 4.95e-5"
    )
    assert wide.thermal_expansion_300k > 1.1 * narrow.thermal_expansion_300k
    assert not narrow.warnings
    sub = narrow.thermal_expansion_300k_subrange
    assert sub == pytest.approx(narrow.thermal_expansion_300k, rel=RANGE_TOLERANCE)


def _free_energies(monkeypatch, maker, structures, shared: bool):
    """Each volume's (F, C_v, S) per atom as ``maker`` hands them to
    PhonopyQHA, with the volumes' phonopy objects shared or one each; and
    how many phonopy objects each material had."""
    real_volumes, real_thermal = qha_module.volume_phonons, qha_module.per_atom
    seen, built = [], []

    def volumes(*args, shared=False, _shared=shared, **kwargs):
        out = real_volumes(*args, shared=_shared, **kwargs)
        built.extend(len({id(p) for p in setup[1]}) for setup in out)
        return out

    def thermal(phonon):
        out = real_thermal(phonon)
        seen.append(np.array([out[k] for k in sorted(out)]))
        return out

    monkeypatch.setattr(qha_module, "volume_phonons", volumes)
    monkeypatch.setattr(qha_module, "per_atom", thermal)
    docs = maker.run(structures, ["Cu"] * len(structures))
    assert all(d.state == "completed" for d in docs), [d.error for d in docs]
    monkeypatch.undo()
    return seen, built


def _check_same(shared, own) -> None:
    assert len(shared) == len(own)
    for a, b in zip(shared, own, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_one_phonopy_object_for_all_volumes_gives_each_its_own_numbers(monkeypatch):
    """Cu: its volumes share one phonopy object (one symmetry search), and
    each volume's F, C_v and S per atom are those of its own phonopy object
    to 1e-9.  (The EOS fit downstream is not that exact: scaling F by
    1 + 1e-13 moves phonopy's α(300 K) of Si by ~4e-4.)
    Planted: the displacements applied about the middle volume's supercell
    instead of each volume's own, or the mesh kept from one volume to the
    next without its new force constants, and the numbers differ."""
    maker = _narrow(temperatures={"t_max": 400.0})
    structures = [AseAtomsAdaptor.get_structure(SOLIDS["Cu"])]
    own, built = _free_energies(monkeypatch, maker, structures, shared=False)
    assert built == [5]
    shared, built = _free_energies(monkeypatch, maker, structures, shared=True)
    assert built == [1]  # one object for Cu's 5 volumes
    _check_same(shared, own)
    about = qha_module._displaced_about  # the plant
    monkeypatch.setattr(
        qha_module, "_displaced_about", lambda p, unit: about(p, p.unitcell)
    )
    planted, _ = _free_energies(monkeypatch, maker, structures, shared=True)
    with pytest.raises(AssertionError):
        _check_same(planted, own)

    def stale(phonon, fc, mesh):  # planted: the mesh kept, its fc not renewed
        if phonon.mesh is None:
            phonon.force_constants = fc
            phonon.run_mesh(mesh, is_gamma_center=True)
        phonon.mesh.run()

    monkeypatch.setattr(qha_module, "run_mesh", stale)
    planted, _ = _free_energies(monkeypatch, maker, structures, shared=True)
    with pytest.raises(AssertionError):
        _check_same(planted, own)


def test_scaled_copy_needs_the_same_fractional_positions():
    """Uniform scaling (and a lattice translation of an atom) keeps a cell a
    scaled copy; a moved atom or a sheared lattice does not."""
    si = bulk("Si", "diamond", a=5.45)
    unit = PhonopyAtoms(
        symbols=si.get_chemical_symbols(),
        cell=si.cell.array,
        scaled_positions=si.get_scaled_positions(),
    )

    def changed(cell=None, shift=None) -> PhonopyAtoms:
        positions = unit.scaled_positions + (0 if shift is None else shift)
        return PhonopyAtoms(
            symbols=unit.symbols,
            cell=unit.cell if cell is None else cell,
            scaled_positions=positions,
        )

    assert scaled_copy(changed(cell=unit.cell * 1.02), unit)
    assert scaled_copy(changed(shift=np.array([[0, 0, 0], [1.0, 0, 0]])), unit)
    assert not scaled_copy(changed(shift=np.array([[0, 0, 0], [1e-6, 0, 0]])), unit)
    stretched = unit.cell * np.array([[1.0], [1.0], [1.01]])
    assert not scaled_copy(changed(cell=stretched), unit)
