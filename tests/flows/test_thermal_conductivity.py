"""Lattice thermal conductivity against phono3py driven by sevenn's
calculator, one supercell at a time; bad settings; unstable materials; the
spec and CLI path with its stores."""

import json
import textwrap

import numpy as np
import pytest
from ase.build import bulk
from oracle.phono3py_kappa import kappa_average, phono3py_kappa
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core import load_model
from sevenomni_flows.jobs import ModelSettings
from sevenomni_flows.properties import ThermalConductivityMaker
from sevenomni_flows.properties.thermal_conductivity import (
    pack_array,
    tensor_from_voigt,
    unpack_array,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SUPERCELL = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
# the primitive 2-atom cell: a 16-atom fc3 supercell (57 displaced cells)
# and an 11x11x11 mesh, cheap and far from converged (see docs/thermal.md)
SI = bulk("Si", "diamond", a=5.45)


def _maker(**settings) -> ThermalConductivityMaker:
    return ThermalConductivityMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        phonon={"supercell": SUPERCELL, "mesh": [11, 11, 11]},
        **settings,
    )


def test_kappa_matches_phono3py_driven_by_sevenn(sevenn_calculator):
    """Si in the RTA: kappa(T) within 1% of phono3py fed by sevenn's
    calculator (float32 on both sides), a cubic tensor, and force
    constants stored that equal phono3py's (compact rows of the full ones)."""
    maker = _maker(temperatures=[200.0, 600.0])
    [doc] = maker.run([AseAtomsAdaptor.get_structure(SI)], ["Si"])
    assert doc.state == "completed", doc.error
    assert doc.temperatures == [200.0, 300.0, 600.0]  # 300 K added
    assert doc.mesh == [11, 11, 11] and doc.n_supercells == 57
    calc = sevenn_calculator(load_model("7net-0").path)
    ref = phono3py_kappa(SI, maker, calc)
    expected = kappa_average(ref)
    np.testing.assert_allclose(doc.kappa_average, expected, rtol=0.01)
    assert doc.kappa_300k == pytest.approx(expected[1], rel=0.01)
    # physics: cubic, isotropic; kappa falls with temperature (Umklapp)
    tensor = np.asarray(doc.kappa)
    for k in tensor:
        np.testing.assert_allclose(k, np.eye(3) * k[0, 0], atol=1e-6 * k[0, 0])
    assert doc.kappa_average[0] > doc.kappa_300k > doc.kappa_average[2] > 0
    # the stored force constants are phono3py's, compact (primitive rows)
    rows = ref.primitive.p2s_map
    fc3 = unpack_array(doc.fc3)
    assert fc3.shape == (2, 16, 16, 3, 3, 3) and fc3.dtype == np.float32
    np.testing.assert_allclose(fc3, ref.fc3[rows], atol=2e-3)
    np.testing.assert_allclose(unpack_array(doc.fc2), ref.fc2[rows], atol=1e-4)
    assert doc.fc3_bytes == len(doc.fc3["data"]) < 10**5


def test_lbte_isotopes_and_a_separate_fc2_supercell_match_phono3py(
    sevenn_calculator,
):
    """The direct solution with isotope scattering, fc2 from its own 3x3x3
    supercell and fc3 pairs cut at 3 Å: kappa(300 K) within 1% of phono3py
    with the same settings."""
    maker = _maker(
        method="lbte",
        isotope=True,
        phonon_supercell=[[3, 0, 0], [0, 3, 0], [0, 0, 3]],
        cutoff_pair_distance=3.0,
        temperatures=[300.0],
    )
    [doc] = maker.run([AseAtomsAdaptor.get_structure(SI)], ["Si"])
    assert doc.state == "completed", doc.error
    assert doc.method == "lbte" and doc.isotope
    assert doc.phonon_supercell_matrix == [[3, 0, 0], [0, 3, 0], [0, 0, 3]]
    ref = phono3py_kappa(SI, maker, sevenn_calculator(load_model("7net-0").path))
    assert doc.n_supercells == sum(
        c is not None for c in ref.supercells_with_displacements
    ) + len(ref.phonon_supercells_with_displacements)
    assert doc.kappa_300k == pytest.approx(kappa_average(ref)[0], rel=0.01)


def test_unstable_and_degenerate_materials_fail_alone():
    """In one job: bcc Si has imaginary modes (failed, with the q-points and
    frequencies), simple-cubic Si in a 2x2x2 supercell has an fc3 that
    cancels by symmetry (failed: no scattering, kappa infinite), and
    diamond Si completes."""
    solids = {
        "bcc-Si": bulk("Si", "bcc", a=3.1),
        "sc-Si": bulk("Si", "sc", a=2.55),
        "Si": SI,
    }
    maker = _maker(temperatures=[300.0])
    structures = [AseAtomsAdaptor.get_structure(a) for a in solids.values()]
    unstable, degenerate, si = maker.run(structures, list(solids))
    assert unstable.state == "failed" and unstable.error_type == "ImaginaryModes"
    assert "imaginary modes" in unstable.error and "THz at q =" in unstable.error
    assert unstable.imaginary_modes and unstable.kappa is None
    lowest = unstable.imaginary_modes[0]
    assert lowest["frequency"] < -0.05 and len(lowest["q"]) == 3
    assert f"{lowest['frequency']} THz" in unstable.error
    assert unstable.min_frequency == pytest.approx(lowest["frequency"], abs=1e-4)
    assert unstable.fc2 is not None  # what was computed is kept
    assert degenerate.state == "failed" and degenerate.error_type == "VanishingFc3"
    assert "larger supercell" in degenerate.error
    assert not degenerate.transient  # a rerun would fail the same way
    assert si.state == "completed" and si.kappa_300k > 10


@pytest.mark.parametrize(
    ("setting", "value", "why"),
    [
        ("temperatures", [-10.0, 300.0], r"conductivity\.temperatures\.values\.0"),
        ("temperatures", [], r"thermal_conductivity\.temperatures\.values"),
        ("temperatures", {"t_min": -5.0}, r"conductivity\.temperatures\.t_min"),
        ("temperatures", {"t_min": 0.0}, r"conductivity\.temperatures: give .* > 0"),
        (
            "phonon",
            {"supercell": [[2, 0], [0, 2]]},
            r"phonon\.supercell: must be a 3x3",
        ),
        (
            "phonon_supercell",
            [2, 2, 2],
            r"thermal_conductivity\.phonon_supercell must be a 3x3",
        ),
        ("phonon", {"mesh": [11, 11]}, r"thermal_conductivity\.phonon\.mesh"),
        ("phonon", {"mesh": -20.0}, r"thermal_conductivity\.phonon\.mesh"),
        ("method", "bte", r"thermal_conductivity\.method must be rta or lbte"),
        ("phonon", {"displacement": 0}, r"phonon\.displacement: .* greater than 0"),
        ("cutoff_pair_distance", -1.0, r"thermal_conductivity\.cutoff_pair_distance"),
        ("phonon", {"imaginary_tol": 0.1}, r"thermal_conductivity\.phonon\.imaginary"),
    ],
)
def test_bad_settings_name_the_key(setting, value, why):
    with pytest.raises(ValueError, match=why):
        ThermalConductivityMaker(**{setting: value})


def test_a_bad_spec_section_names_the_key():
    """The spec section is the Maker's: a negative temperature is refused
    when the spec is read, naming the key."""
    from sevenomni_flows.spec import RunSpec

    with pytest.raises(ValueError, match=r"thermal_conductivity\.temperatures"):
        RunSpec.model_validate({"thermal_conductivity": {"temperatures": [-1, 300]}})


def test_reuse_key_holds_what_changes_results():
    """The same temperatures asked two ways give one key; a length a given
    supercell overrides and the plot folder do not enter it; the mesh does."""
    from sevenomni_flows.jobs.base import resolve_input

    pot = load_model("7net-0", device="cpu")
    item = resolve_input(SI, "Si")

    def key(**settings):
        [target] = ThermalConductivityMaker(**settings).targets(item, pot, None)
        return target.key

    given = {"supercell": SUPERCELL}
    listed = key(temperatures=[100.0, 200.0, 300.0], phonon=given)
    grid = {"t_min": 100.0, "t_max": 300.0, "t_step": 100.0}
    assert listed == key(temperatures=grid, phonon=given)
    assert listed == key(
        temperatures=[300, 100, 200], phonon={**given, "min_length": 20.0}
    )
    assert listed == key(temperatures=[100.0, 200.0], phonon=given, plot_dir="/x")
    assert listed != key(temperatures=[100.0, 200.0], phonon={**given, "mesh": 19})
    # no supercell given: the length counts
    assert key() != key(phonon={"min_length": 20.0})


def test_packing_and_voigt_helpers():
    """Packed arrays come back exactly; phono3py's six components fill a
    symmetric 3x3 tensor."""
    rng = np.random.default_rng(0)
    fc = rng.normal(size=(2, 4, 4, 3, 3, 3))
    np.testing.assert_array_equal(unpack_array(pack_array(fc)), fc)
    back = unpack_array(json.loads(json.dumps(pack_array(fc, "float32"))))
    np.testing.assert_array_equal(back, fc.astype(np.float32))
    tensor = tensor_from_voigt([[1, 2, 3, 4, 5, 6]])
    np.testing.assert_array_equal(tensor[0], [[1, 6, 5], [6, 2, 4], [5, 4, 3]])


def test_cli_run_stores_kappa_and_force_constants(tmp_path, capsys):
    """``sevenomni run`` relaxes Si and computes kappa; the results store
    holds kappa without the force constants, the data store holds them, the
    plot is written, and a second run reuses everything."""
    from sevenomni_flows.cli import main
    from sevenomni_flows.run import open_store
    from sevenomni_flows.stores.results import results_store

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""
            model: 7net-0
            device: cpu
            structures:
              - {{bulk: Si, crystal: diamond, a: 5.43}}
            properties: [relax, thermal_conductivity]
            relax: {{fmax: 0.01}}
            thermal_conductivity:
              phonon: {{supercell: {SUPERCELL}, mesh: [11, 11, 11]}}
              temperatures: [300.0, 500.0]
            """
        )
    )
    store = tmp_path / "results"
    assert main(["run", str(spec), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "2 completed, 0 failed" in out, out
    query = ["query", '{"property": "thermal_conductivity"}', "--store", str(store)]
    assert main([*query, "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["state"] == "completed" and 10 < row["kappa_300k"] < 1000
    assert row["plots"] and row["plots"][0].endswith("_kappa.png")
    assert (store / "plots").is_dir()
    assert main(query) == 0
    assert "kappa_300k (W/m/K)" in capsys.readouterr().out
    jobs = open_store(store)
    [doc] = results_store(jobs).query({"property": "thermal_conductivity"})
    assert doc["temperatures"] == [300.0, 500.0] and len(doc["kappa"]) == 2
    assert "fc3" not in doc and "fc2" not in doc  # those are in the data store
    blobs = list(jobs.additional_stores["data"].query({}))
    packed = [b["data"] for b in blobs if isinstance(b.get("data"), dict)]
    fc3 = [unpack_array(p) for p in packed if len(p.get("shape", [])) == 6]
    assert len(fc3) == 1 and fc3[0].shape == (2, 16, 16, 3, 3, 3)
    assert main(["run", str(spec), "--store", str(store)]) == 0
    assert "2 results reused, 0 to compute" in capsys.readouterr().out
