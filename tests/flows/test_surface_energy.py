"""Surface energies against plain ASE slabs relaxed with sevenn's calculator;
the Wulff shape; bad facets and non-stoichiometric slabs."""

import numpy as np
import pytest
from ase.build import bulk, fcc100, fcc110, fcc111
from ase.constraints import FixAtoms
from ase.optimize import FIRE
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core import load_model
from sevenomni_flows.jobs import ModelSettings, SurfaceEnergyMaker
from sevenomni_flows.jobs.surface_energy import surface_energy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

A = 3.62  # Cu, Å
BUILDERS = {"1 1 1": fcc111, "1 0 0": fcc100, "1 1 0": fcc110}


def _ase_gamma(build, calc, fixed_layers, layers=6, vacuum=15.0):
    """γ (J/m²) of an ASE slab relaxed with FIRE, the same formula."""
    slab = build("Cu", size=(1, 1, layers), a=A, vacuum=vacuum / 2, periodic=True)
    z = slab.positions[:, 2]
    heights = np.unique(z.round(3))
    if fixed_layers:
        slab.set_constraint(FixAtoms(mask=z < heights[fixed_layers] - 0.1))
    slab.calc = calc
    unrelaxed = slab.get_potential_energy() if fixed_layers else None
    FIRE(slab, logfile=None).run(fmax=0.02, steps=300)
    cu = bulk("Cu", "fcc", a=A)
    cu.calc = calc
    e_bulk = cu.get_potential_energy() / len(cu)
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    return surface_energy(
        slab.get_potential_energy(), len(slab), e_bulk, area, unrelaxed
    )


@pytest.mark.parametrize("fixed_layers", [0, 2])
def test_cu_facets_match_plain_ase_slabs(fixed_layers, sevenn_calculator):
    """γ of Cu(111), (100) and (110) within 0.005 J/m² of ASE slabs with the
    same layers, fixed layers and vacuum relaxed by sevenn's calculator;
    the close-packed (111) is lowest and dominates the Wulff shape."""
    maker = SurfaceEnergyMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        miller_indices=[[1, 1, 1], [1, 0, 0], [1, 1, 0]],
        slab={
            "layers": 6,
            "fixed_layers": fixed_layers,
            "supercell": [1, 1],
            "vacuum": 15.0,
        },
    )
    [doc] = maker.run([AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=A))], ["Cu"])
    assert doc.state == "completed", doc.error
    calc = sevenn_calculator(load_model("7net-0").path)
    for facet, build in BUILDERS.items():
        reference = _ase_gamma(build, calc, fixed_layers)
        assert doc.surface_energies[facet] == pytest.approx(reference, abs=0.005)
    gammas = doc.surface_energies
    assert gammas["1 1 1"] < gammas["1 0 0"] < gammas["1 1 0"]
    assert 1.0 < gammas["1 1 1"] < 2.0
    assert max(doc.wulff_fractions, key=doc.wulff_fractions.get) == "1 1 1"
    assert sum(doc.wulff_fractions.values()) == pytest.approx(1.0)
    assert min(gammas.values()) <= doc.weighted_surface_energy <= max(gammas.values())


def test_all_facets_up_to_max_index_and_bad_input():
    """max_index 1 gives the three distinct low-index facets of a cubic
    metal; (0, 0, 0) is refused by name; a compound whose slab is not
    stoichiometric fails alone while the metal beside it completes."""
    maker = SurfaceEnergyMaker(max_index=1)
    facets = maker.facets(AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=A)))
    assert sorted(map(tuple, facets)) == [(1, 0, 0), (1, 1, 0), (1, 1, 1)]
    with pytest.raises(ValueError, match=r"surface_energy.miller_indices: \(0, 0, 0\)"):
        SurfaceEnergyMaker(miller_indices=[[0, 0, 0]])
    with pytest.raises(ValueError, match=r"surface_energy\.max_index"):
        SurfaceEnergyMaker(max_index=0)
    maker = SurfaceEnergyMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        miller_indices=[[1, 1, 1]],
        slab={"layers": 3, "fixed_layers": 0, "supercell": [1, 1], "vacuum": 12.0},
    )
    nacl = AseAtomsAdaptor.get_structure(bulk("NaCl", "rocksalt", a=5.64))
    cu = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=A))
    salt, metal = maker.run([nacl, cu], ["NaCl", "Cu"])
    assert salt.state == "failed" and "not stoichiometric" in salt.error
    assert metal.state == "completed"


def test_surface_energy_through_the_cli_fails_reruns_and_recomputes(tmp_path, capsys):
    """Through ``sevenomni run``: NaCl(111) is not stoichiometric and fails
    alone (exit 1), one document per planned calculation; a rerun keeps
    that deterministic failure and computes nothing; a changed facet setting
    recomputes only the surface energies (new keys), and NaCl(100)
    completes (exit 0)."""
    import json

    from sevenomni_flows.cli import main

    spec = tmp_path / "spec.yaml"
    body = """
model: 7net-0
device: cpu
structures:
  - {bulk: Cu, crystal: fcc, a: 3.62}
  - {bulk: NaCl, crystal: rocksalt, a: 5.64}
properties: [relax, surface_energy]
relax: {fmax: 0.05}
surface_energy:
  miller_indices: [[MILLER]]
  slab: {layers: 3, fixed_layers: 0, supercell: [1, 1], vacuum: 12.0}
"""
    store = str(tmp_path / "results")

    def run(miller):
        spec.write_text(body.replace("MILLER", miller))
        status = main(["run", str(spec), "--store", store])
        return status, capsys.readouterr().out

    def stored():
        main(["query", "{}", "--store", store, "--format", "json"])
        return json.loads(capsys.readouterr().out)

    status, out = run("1, 1, 1")
    assert status == 1 and "3 completed, 1 failed, 0 skipped, 0 missing" in out
    docs = stored()
    assert len(docs) == 4
    salt = next(d for d in docs if d["label"] == "NaCl" and d["property"] != "relax")
    assert salt["state"] == "failed" and "not stoichiometric" in salt["error"]
    status, out = run("1, 1, 1")
    assert status == 1 and "0 to compute" in out and "1 failures kept" in out
    assert len(stored()) == 4
    status, out = run("1, 0, 0")
    assert status == 0 and "2 results reused, 2 to compute" in out
    docs = stored()
    now = [d for d in docs if d["property"] == "surface_energy"]
    assert len(docs) == 6 and len(now) == 4  # the (111) documents are kept
    assert {d["state"] for d in now if "1 0 0" in d["surface_energies"]} == {
        "completed"
    }


def test_surface_convergence_matches_ase_slabs_at_each_layer_count(sevenn_calculator):
    """surface_convergence gives γ(111) and γ(100) of Cu at 4 and 6 layers
    in one batch, each equal to the ASE slab of that thickness; the Wulff
    shape keeps the protocol's 6 layers; a count not above fixed_layers is
    refused by name."""
    maker = SurfaceEnergyMaker(
        settings=ModelSettings("7net-0", device="cpu"),
        miller_indices=[[1, 1, 1], [1, 0, 0]],
        slab={"layers": 6, "fixed_layers": 0, "supercell": [1, 1], "vacuum": 15.0},
        surface_convergence=[4, 6],
    )
    [doc] = maker.run([AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=A))], ["Cu"])
    assert doc.state == "completed", doc.error
    calc = sevenn_calculator(load_model("7net-0").path)
    for facet in ("1 1 1", "1 0 0"):
        assert set(doc.convergence[facet]) == {"4", "6"}
        for layers in (4, 6):
            reference = _ase_gamma(BUILDERS[facet], calc, 0, layers=layers)
            assert doc.convergence[facet][str(layers)] == pytest.approx(
                reference, abs=0.005
            )
        assert doc.surface_energies[facet] == doc.convergence[facet]["6"]
    assert len(doc.slabs) == 4
    with pytest.raises(ValueError, match=r"surface_energy\.surface_convergence"):
        SurfaceEnergyMaker(
            slab={"layers": 6, "fixed_layers": 2, "supercell": [1, 1], "vacuum": 15.0},
            surface_convergence=[2],
        )
