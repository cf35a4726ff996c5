"""Property workflows: end to end on the embedded store, and against atomate2."""

import warnings

import numpy as np
import pytest
from jobflow import Flow, run_locally
from pymatgen.core import Lattice, Structure

from sevenomni_core import load_model
from sevenomni_flows import (
    ElasticMaker,
    EosMaker,
    ModelSettings,
    PhononMaker,
    RelaxMaker,
    embedded_job_store,
)
from sevenomni_flows.properties.eos import fit_eos

SETTINGS = ModelSettings(model="7net-0", device="cpu")


def silicon() -> Structure:
    return Structure(
        Lattice.from_parameters(3.87, 3.87, 3.87, 60, 60, 60),
        ["Si", "Si"],
        [[0, 0, 0], [0.25, 0.25, 0.25]],
    )


@pytest.fixture(scope="module")
def si_results(tmp_path_factory):
    """Relax, elastic, phonon and EOS of Si, run locally on the embedded store."""
    folder = tmp_path_factory.mktemp("store")
    relax = RelaxMaker(settings=SETTINGS, fmax=1e-4).make(silicon())
    elastic = ElasticMaker(settings=SETTINGS).make(relax.output)
    phonon = PhononMaker(
        settings=SETTINGS,
        supercell=[[3, 0, 0], [0, 3, 0], [0, 0, 3]],
        plot_dir=str(folder / "plots"),
    ).make(relax.output)
    eos = EosMaker(
        settings=SETTINGS,
        linear_strains=[-0.05, -0.03, -0.01, 0.0, 0.01, 0.03, 0.05],
        plot_dir=str(folder / "plots"),
    ).make(relax.output)
    store = embedded_job_store(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_locally(
            Flow([relax, elastic, phonon, eos]),
            store=store,
            ensure_success=True,
            log=False,
        )
    store.connect()
    docs = {}
    for d in store.query({}, properties=["output"]):
        docs[d["output"]["property"]] = d["output"]
    return docs, store


def test_documents_and_provenance(si_results):
    """Every document carries the summary fields, units and provenance."""
    docs, _ = si_results
    pot = load_model("7net-0")
    assert set(docs) == {"relax", "elastic", "phonon", "eos"}
    ids = {d["structure_id"] for d in docs.values()}
    assert len(ids) == 1  # all keyed on the input material
    for doc in docs.values():
        assert doc["state"] == "completed" and doc["formula"] == "Si"
        assert doc["model"]["name"] == "7net-0"
        assert doc["model"]["sha256"] == pot.sha256
        assert doc["model"]["torch_version"] and doc["model"]["e3nn_version"]
        assert doc["key"] and doc["protocol"]["model_sha256"] == pot.sha256
        assert doc["protocol"]["dtype"] == "float32"
    relax_key = docs["relax"]["key"]
    for prop in ("elastic", "phonon", "eos"):  # computed on that relaxation
        assert docs[prop]["protocol"]["on"] == relax_key
    assert docs["relax"]["protocol"]["on"] == docs["relax"]["structure_id"]
    assert docs["relax"]["converged"] is True
    assert docs["relax"]["max_force"] < 1e-4


def test_physics_is_consistent(si_results):
    """K_VRH equals the E(V) curvature at equilibrium; phonons are stable."""
    from ase.units import GPa

    docs, _ = si_results
    k_elastic = docs["elastic"]["bulk_modulus_vrh"]
    # curvature of E(V) at the three central points (strains -1%, 0, +1%);
    # the wide +-5% EOS fit is softer through anharmonicity
    v = np.array(docs["eos"]["volumes"][2:5])
    e = np.array(docs["eos"]["energies"][2:5])
    a2 = np.polyfit(v, e, 2)[0]
    k_curvature = 2 * a2 * v[1] / GPa
    assert k_elastic == pytest.approx(k_curvature, rel=0.03)
    assert docs["eos"]["b0"] < k_elastic
    c = np.array(docs["elastic"]["elastic_tensor"])
    np.testing.assert_allclose(c, c.T, atol=1.0)  # symmetric, GPa
    assert c[0, 0] > c[0, 1] > 0 and c[3, 3] > 0  # cubic stability
    ph = docs["phonon"]
    assert ph["has_imaginary_modes"] is False
    gamma = sorted(ph["gamma_frequencies"])
    assert max(abs(f) for f in gamma[:3]) < 0.02  # acoustic sum rule
    assert ph["max_frequency"] > 10.0


def test_large_arrays_in_data_store_and_plots(si_results):
    """Band structure and force constants go to the data store; plots are written."""
    from pathlib import Path

    docs, store = si_results
    ph = docs["phonon"]
    assert (
        isinstance(ph["band_structure"], dict) and "blob_uuid" in ph["band_structure"]
    )
    blob = store.additional_stores["data"].query_one(
        {"blob_uuid": ph["band_structure"]["blob_uuid"]}
    )
    assert blob is not None
    for doc in (docs["phonon"], docs["eos"]):
        assert doc["plots"] and all(Path(p).is_file() for p in doc["plots"])


def _atomate2_sevenn():
    pytest.importorskip("atomate2")
    ff = {"@module": "sevenn.calculator", "@callable": "SevenNetCalculator"}
    return ff, {"model": str(load_model("7net-0").path), "device": "cpu"}


def test_bulk_modulus_matches_atomate2(si_results, tmp_path, monkeypatch):
    """Our EOS bulk modulus equals atomate2's EOS flow with sevenn's calculator (1%)."""
    monkeypatch.chdir(tmp_path)  # atomate2 writes its files into the working folder
    from atomate2.forcefields.flows.eos import ForceFieldEosMaker

    ff, kwargs = _atomate2_sevenn()
    maker = ForceFieldEosMaker.from_force_field_name(ff, calculator_kwargs=kwargs)
    flow = maker.make(silicon())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_locally(flow, ensure_success=True, log=False)
    data = res[flow.jobs[-1].uuid][1].output["relax"]
    n = 2
    _, ref = fit_eos(
        np.array(data["volume"]) / n, np.array(data["energy"]) / n, "birch_murnaghan"
    )
    docs, _ = si_results
    assert docs["eos"]["b0"] == pytest.approx(ref["b0"], rel=0.01)
    assert docs["eos"]["v0"] == pytest.approx(ref["v0"], rel=0.002)


def test_phonons_match_atomate2(si_results, tmp_path, monkeypatch):
    """Phonon frequencies equal atomate2's phonon flow with sevenn (0.05 THz)."""
    monkeypatch.chdir(tmp_path)  # atomate2 writes its files into the working folder
    from atomate2.forcefields.flows.phonons import PhononMaker as A2PhononMaker
    from atomate2.forcefields.jobs import ForceFieldRelaxMaker, ForceFieldStaticMaker

    ff, kwargs = _atomate2_sevenn()
    static = ForceFieldStaticMaker(force_field_name=ff, calculator_kwargs=kwargs)
    maker = A2PhononMaker(
        bulk_relax_maker=ForceFieldRelaxMaker(
            force_field_name=ff, calculator_kwargs=kwargs, relax_kwargs={"fmax": 1e-4}
        ),
        static_energy_maker=static,
        phonon_displacement_maker=static,
        store_force_constants=False,
    )
    flow = maker.make(silicon(), supercell_matrix=[[3, 0, 0], [0, 3, 0], [0, 0, 3]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_locally(flow, ensure_success=True, log=False)
    bands = res[flow.output.uuid][1].output.phonon_bandstructure.bands
    docs, _ = si_results
    ours = docs["phonon"]
    np.testing.assert_allclose(
        sorted(ours["gamma_frequencies"]), sorted(bands[:, 0]), atol=0.05
    )
    assert ours["max_frequency"] == pytest.approx(bands.max(), abs=0.05)


@pytest.mark.usefixtures("one_torch_thread")
def test_relax_maker_keeps_fix_symmetry(monkeypatch):
    """An ASE input with FixSymmetry, through the relax Maker: simple-cubic Cu
    (8 atoms) held at its saddle point, atom 0 moved 0.01 Å past the
    constraint, stays simple cubic and keeps the constraint in its relaxed
    structure.  Planted: the Maker dropping the constraint when it
    hands the atoms to the engine lets it roll off."""
    import spglib
    from ase import Atoms
    from ase.constraints import FixSymmetry

    import sevenomni_flows.properties.relax as relax_module

    atoms = Atoms("Cu", cell=np.eye(3) * 2.45, pbc=True).repeat(2)
    atoms.set_constraint(FixSymmetry(atoms, symprec=0.05))
    atoms.positions[0] += [0.01, 0.006, 0.003]
    maker = RelaxMaker(settings=SETTINGS, fmax=0.01, max_steps=60)

    def space_group(doc):
        s = Structure.from_dict(doc.structure.as_dict())
        cell = (s.lattice.matrix, s.frac_coords, s.atomic_numbers)
        return spglib.get_spacegroup(cell, symprec=0.05)

    [kept] = maker.run([atoms], ["sc"])
    assert kept.state == "completed" and kept.converged
    assert space_group(kept) == "Pm-3m (221)"
    assert kept.structure.properties["fix_symmetry"] == 0.05

    plain_atoms = relax_module.labelled_atoms
    monkeypatch.setattr(
        relax_module,
        "labelled_atoms",
        lambda item, constraints=False: plain_atoms(item),
    )
    [planted] = maker.run([atoms], ["sc"])
    with pytest.raises(AssertionError):
        assert space_group(planted) == "Pm-3m (221)"
