"""Slab protocols: presets, what is built, bad input, and Pt(111) against plain ASE."""

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk, fcc111
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core import SevenOmniCalculator
from sevenomni_flows import ModelSettings
from sevenomni_flows.adsorption.slab_protocol import PRESETS, SlabProtocol
from sevenomni_flows.adsorption.surfaces import build_slab
from sevenomni_flows.properties.adsorption import SlabAdsorptionMaker

A_PT = 3.97  # Å, used by both sides of the comparison


def pt():
    return AseAtomsAdaptor.get_structure(bulk("Pt", "fcc", a=A_PT))


def test_presets_resolve_and_overrides_replace_their_alternative():
    """A preset fills every choice; a key beside it replaces that choice only."""
    for name, values in PRESETS.items():
        resolved = SlabProtocol.model_validate(name)
        assert resolved.model_dump(exclude_none=True) == {"preset": name, **values}
    mixed = SlabProtocol(preset="converged", supercell=(2, 2), free_layers=1)
    assert (mixed.layers, mixed.vacuum) == (4, 15.0)
    assert mixed.min_lateral is None and mixed.fixed_layers is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"layers": 4, "fixed_layers": 4, "supercell": [3, 3], "vacuum": 15},
            "fixed_layers (4) must be fewer than layers (4)",
        ),
        (
            {"layers": 0, "fixed_layers": 0, "supercell": [3, 3], "vacuum": 15},
            "layers: Input should be greater than or equal to 1",
        ),
        (
            {"preset": "converged", "layers": 4, "min_thickness": 7.0},
            "give exactly one of 'layers' or 'min_thickness'",
        ),
        (
            {"preset": "converged", "supercell": [0, 3]},
            "supercell.0: Input should be greater than or equal to 1",
        ),
        (
            {"preset": "converged", "vacuum": -1},
            "vacuum: Input should be greater than 0",
        ),
    ],
)
def test_bad_protocols_name_the_setting(given, message):
    """The message names the key (its full path in a Maker: adsorption.slab.*)."""
    with pytest.raises(ValueError, match=re.escape(message.split(": ")[-1])):
        SlabProtocol.model_validate(given)
    sep = "." if ": " in message else ": "  # a key's range, or the whole slab's
    with pytest.raises(ValueError, match=f"^adsorption.slab{sep}" + re.escape(message)):
        SlabAdsorptionMaker(slab=given)


def test_thickness_mode_with_too_many_fixed_layers_fails_at_build():
    protocol = {
        "min_thickness": 3.0,
        "fixed_layers": 3,
        "supercell": [1, 1],
        "vacuum": 10,
    }
    with pytest.raises(ValueError, match=r"\(111\): the slab has 2 layers"):
        build_slab(pt(), (1, 1, 1), protocol)


def test_converged_pt111_is_the_slab_ase_builds():
    """4 layers, 2 fixed, p(3x3), 15 Å vacuum: the atoms of ase.build.fcc111."""
    slab = build_slab(pt(), (1, 1, 1), "converged")
    ref = fcc111("Pt", size=(3, 3, 4), a=A_PT, vacuum=7.5)
    built = slab.info["slab"]
    assert built["layers"] == 4 and built["fixed_layers"] == 2
    assert built["supercell"] == [3, 3] and built["surface_atoms"] == 9
    assert built["coverage"] == pytest.approx(1 / 9)
    nn = A_PT / np.sqrt(2)
    assert built["image_distance"] == pytest.approx(3 * nn)
    assert len(slab) == len(ref) == 36
    assert slab.cell.lengths() == pytest.approx(ref.cell.lengths(), abs=1e-6)
    assert built["thickness"] == pytest.approx(3 * A_PT / np.sqrt(3))
    fixed = slab.constraints[0].index
    z = slab.positions[:, 2]
    assert len(fixed) == 18 and z[fixed].max() < np.sort(np.unique(z.round(3)))[2]


def test_pt100_and_oc20_preset():
    """fcc(100) on its primitive square cell; OC20 frees the top layer only."""
    slab = build_slab(pt(), (1, 0, 0), {"preset": "converged", "supercell": [2, 2]})
    assert len(slab) == 16 and slab.info["slab"]["surface_atoms"] == 4
    assert slab.cell.lengths()[:2] == pytest.approx([2 * A_PT / np.sqrt(2)] * 2)
    oc20 = build_slab(pt(), (1, 1, 1), "oc20")
    built = oc20.info["slab"]
    # pymatgen's min_slab_size counts layers x interlayer spacing: 4 x 2.29 Å
    d = A_PT / np.sqrt(3)
    assert built["layers"] == 4 and built["thickness"] == pytest.approx(3 * d)
    assert built["image_distance"] >= 8.0
    assert built["fixed_layers"] == built["layers"] - 1
    assert built["vacuum"] == 20.0


def test_adsorbate_near_its_image_is_warned_in_the_document():
    """A p(1x1) cell puts H within the cutoff of its image: stored as a warning."""
    maker = SlabAdsorptionMaker(
        settings=ModelSettings(model="7net-0", device="cpu"),
        adsorbates=["H"],
        slab={"layers": 3, "fixed_layers": 1, "supercell": [1, 1], "vacuum": 10},
        relax={"max_steps": 100},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        [doc] = maker.run(pt(), "Pt")
    assert doc.slab["supercell"] == [1, 1] and doc.slab["coverage"] == 1.0
    [warning] = doc.warnings
    assert "from its periodic image, within the model's 5 Å cutoff" in warning
    assert doc.protocol["settings"]["slab"]["supercell"] == [1, 1]


@pytest.mark.slow
def test_pt111_converged_preset_matches_ase_bfgs():
    """CO top, CO fcc, O fcc, H fcc within 0.03 eV of ASE BFGS on a slab from
    ase.build.fcc111 (7net-mf-0, PBE; benchmarks/slab_protocol.py prints it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from slab_protocol import ase_adsorption_energies, flow_adsorption_energies

    settings = ModelSettings(model="7net-mf-0", task="PBE", device="cpu")
    ours = flow_adsorption_energies(settings)
    calc = SevenOmniCalculator("7net-mf-0", task="PBE", device="cpu")
    for case, e_ase in ase_adsorption_energies(calc).items():
        assert ours[case] == pytest.approx(e_ase, abs=0.03), case


def test_slab_convergence_through_a_spec(tmp_path, capsys, one_torch_thread):
    """One batched job tabulates E_ads per setting; its rows match the
    adsorption flow on the same protocol; a rerun reuses it."""
    import json

    from sevenomni_flows.cli import main
    from sevenomni_flows.run import open_store
    from sevenomni_flows.stores.results import results_store

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "model: 7net-0\ndevice: cpu\nrelax: {fmax: 0.05}\n"
        "structures:\n  - {bulk: Cu, crystal: fcc, a: 3.61}\n"
        "properties: [relax, slab_convergence, adsorption]\n"
        "slab_convergence: {adsorbates: [H], layers: [2, 3], "
        "supercells: [[1, 1], [2, 2]], free_layers: 1, vacuum: 12}\n"
        "adsorption: {adsorbates: [H], slab: {layers: 3, free_layers: 1, "
        "supercell: [2, 2], vacuum: 12}}\n"
    )
    store = tmp_path / "results"
    assert main(["run", str(spec), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "in 3 jobs" in out  # relax, slab_convergence, adsorption

    def query(prop):
        main(
            [
                "query",
                json.dumps({"property": prop}),
                "--store",
                str(store),
                "--format",
                "json",
            ]
        )
        return json.loads(capsys.readouterr().out)

    [conv] = query("slab_convergence")
    [ads] = query("adsorption")
    assert conv["state"] == "completed" and conv["host"] == "Cu(111)"
    [full] = results_store(open_store(store)).query({"property": "slab_convergence"})
    rows = {(r["layers"], tuple(r["supercell"])): r for r in full["rows"]}
    assert set(rows) == {(2, (1, 1)), (2, (2, 2)), (3, (1, 1)), (3, (2, 2))}
    assert rows[3, (2, 2)]["deviation"] == 0.0
    assert conv["adsorption_energy"] == rows[3, (2, 2)]["adsorption_energy"]
    # the same protocol through the adsorption flow gives the same energy
    assert ads["adsorption_energy"] == pytest.approx(
        conv["adsorption_energy"], abs=2e-3
    )
    assert conv["max_deviation"] == pytest.approx(
        max(abs(r["deviation"]) for r in rows.values())
    )
    assert full["plots"] and full["plots"][0].endswith("_slab_convergence.png")
    assert main(["run", str(spec), "--store", str(store)]) == 0
    assert "3 results reused" in capsys.readouterr().out


def test_slab_convergence_refuses_settings_without_a_fixed_bottom():
    from sevenomni_flows.properties.slab_convergence import SlabConvergenceMaker

    with pytest.raises(ValueError, match="layers: 2 is not more than free_layers"):
        SlabConvergenceMaker(layers=[2, 4], free_layers=2)
    with pytest.raises(
        ValueError, match=r"supercell \[0, 2\]: supercell\.0: Input should be greater"
    ):
        SlabConvergenceMaker(supercells=[[0, 2]])
    with pytest.raises(ValueError, match="duplicates"):
        SlabConvergenceMaker(layers=[3, 3])


def test_one_changed_protocol_setting_changes_every_key():
    """A rerun with another slab, vacuum or supercell is not served old results;
    an equivalent spelling of the same protocol is."""
    from sevenomni_flows.jobs.base import resolve_input

    pot, task = ModelSettings(model="7net-0", device="cpu").potential()
    item = resolve_input(pt(), "Pt")

    def keys(**slab):
        maker = SlabAdsorptionMaker(adsorbates=["H"], slab=slab or "converged")
        return {t.key for t in maker.targets(item, pot, task)}

    base = keys()
    assert keys(preset="converged", layers=4) == base  # the same protocol
    for change in (
        {"preset": "converged", "layers": 5},
        {"preset": "converged", "vacuum": 20.0},
        {"preset": "converged", "supercell": [3, 3]},
        {"preset": "oc20"},
    ):
        assert keys(**change).isdisjoint(base), change
