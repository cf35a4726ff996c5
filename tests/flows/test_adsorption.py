"""Adsorption energies: independent ASE check, symmetry, anomalies, bad input."""

import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.constraints import FixAtoms
from ase.optimize import FIRE
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core import SevenOmniCalculator
from sevenomni_core.batch import relax
from sevenomni_flows import ModelSettings
from sevenomni_flows.adsorption import classify, get_adsorbate
from sevenomni_flows.adsorption.surfaces import build_slab, find_sites, place
from sevenomni_flows.properties.adsorption import (
    MofAdsorptionMaker,
    SlabAdsorptionMaker,
)

SETTINGS = ModelSettings(model="7net-0", device="cpu")
#: A small slab: 3 layers (bottom one fixed), p(2x2).
SMALL = {"layers": 3, "fixed_layers": 1, "supercell": [2, 2], "vacuum": 12.0}
FAST = dict(slab=SMALL, relax={"fmax": 0.05, "max_steps": 200})


@pytest.fixture(scope="module")
def cu_h():
    """H on Cu(111) through the maker (no workflow engine)."""
    cu = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.63))
    maker = SlabAdsorptionMaker(
        settings=SETTINGS, adsorbates=["H"], miller_indices=[[1, 1, 1]], **FAST
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        [doc] = maker.run(cu)
    return maker, cu, doc


def test_adsorption_energy_matches_plain_ase(cu_h):
    """E_ads equals an independent ASE computation on the same structures (0.01 eV)."""
    _, cu, doc = cu_h
    assert doc.state == "completed" and doc.reference_scheme == "gas"
    assert {"ontop", "bridge", "fcc", "hcp"} <= {c["site"] for c in doc.candidates}
    best = min(
        (c for c in doc.candidates if not c["anomalies"]),
        key=lambda c: c["adsorption_energy"],
    )
    i = doc.candidates.index(best)
    relaxed = AseAtomsAdaptor.get_atoms(doc.relaxed_structures[i])
    calc = SevenOmniCalculator("7net-0", device="cpu")
    relaxed.calc = calc
    e_system = relaxed.get_potential_energy()
    slab = build_slab(cu, (1, 1, 1), SMALL)
    slab.calc = calc
    FIRE(slab, logfile=None).run(fmax=0.01, steps=300)
    h2 = molecule("H2")
    h2.calc = calc
    FIRE(h2, logfile=None).run(fmax=0.01, steps=300)
    e_ase = e_system - slab.get_potential_energy() - 0.5 * h2.get_potential_energy()
    assert doc.adsorption_energy == pytest.approx(e_ase, abs=0.01)
    assert doc.adsorption_energy == pytest.approx(best["adsorption_energy"])


def test_symmetry_equivalent_sites_agree():
    """The same site one surface lattice vector apart relaxes to the same energy."""
    cu = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.63))
    slab = build_slab(cu, (1, 1, 1), SMALL | {"supercell": [3, 3]})
    site = next(s for s in find_sites(slab) if s["label"] == "fcc")
    # one in-plane nearest-neighbour vector of the (111) surface
    top = slab.positions[:, 2] > slab.positions[:, 2].max() - 0.5
    pts = slab.positions[top]
    shift = min((p - pts[0] for p in pts[1:]), key=np.linalg.norm)
    other = {"label": "fcc", "position": (np.array(site["position"]) + shift).tolist()}
    ads = get_adsorbate("O")
    a, _ = place(slab, ads, site)
    b, _ = place(slab, ads, other)
    ra, rb = relax([a, b], model="7net-0", fmax=0.02, max_steps=300)
    assert ra.converged and rb.converged
    assert abs(ra.energy - rb.energy) < 0.02


def test_anomalies_on_constructed_cases():
    """Desorbed, dissociated, intercalated and reconstructed placements are flagged."""
    slab = fcc111("Cu", size=(3, 3, 3), vacuum=10.0)
    host = np.arange(len(slab))
    top = slab.positions[:, 2].max()
    oh = Atoms("OH", positions=[[0, 0, top + 1.5], [0, 0, top + 2.47]])
    initial = slab + oh
    ads = np.arange(len(slab), len(initial))
    assert classify(initial, initial, ads, host, slab) == []
    far = initial.copy()
    far.positions[ads, 2] += 6.0
    assert "desorbed" in classify(initial, far, ads, host, slab)
    split = initial.copy()
    split.positions[ads[1]] += [2.5, 0, 0]
    assert "dissociated" in classify(initial, split, ads, host, slab)
    under = initial.copy()
    under.positions[ads, 2] -= 3.0
    assert "intercalated" in classify(initial, under, ads, host, slab)
    moved = initial.copy()
    moved.positions[3] += [1.0, 0.0, 0.0]
    assert "reconstructed" in classify(initial, moved, ads, host, slab)
    assert "migrated" in classify(initial, initial, ads, host, slab, True, "fcc", "hcp")


def test_relaxation_catches_a_desorbing_molecule():
    """A molecule placed far above the surface stays there and is flagged desorbed."""
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=10.0)
    slab.set_constraint(FixAtoms(indices=list(range(len(slab)))))
    top = slab.positions[:, 2].max()
    co2 = molecule("CO2")
    co2.positions += [2.0, 1.0, top + 6.0]
    start = slab + co2
    start.set_constraint(FixAtoms(indices=list(range(len(slab)))))
    [res] = relax([start], model="7net-0", fmax=0.05, max_steps=100)
    ads = np.arange(len(slab), len(start))
    assert "desorbed" in classify(start, res.atoms, ads, np.arange(len(slab)))


def test_bad_inputs_fail_alone(tmp_path):
    """Non-metal bulk, bad adsorbates and broken MOF files fail with reasons."""
    for bad, why in (
        (["H", "Unobtainium"], "unknown adsorbate 'Unobtainium'"),
        (["CO", "co"], "'co' repeats 'CO'"),
        ([], "give at least one"),
    ):
        with pytest.raises(ValueError, match=why):
            SlabAdsorptionMaker(settings=SETTINGS, adsorbates=bad, **FAST)
    for miller, why in (([0, 0, 0], "not a surface"), ([1, 1], "three integers")):
        with pytest.raises(ValueError, match=why):
            SlabAdsorptionMaker(miller_indices=[miller], **FAST)
    nacl = AseAtomsAdaptor.get_structure(bulk("NaCl", "rocksalt", a=5.64))
    cu = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.63))
    maker = SlabAdsorptionMaker(
        settings=SETTINGS, adsorbates=["H"], miller_indices=[[1, 0, 0]], **FAST
    )
    docs = maker.run([nacl, cu], ["NaCl.cif", "Cu.cif"])
    by = {d.label: d for d in docs}
    assert by["NaCl.cif"].state == "failed"
    assert "not a metal" in by["NaCl.cif"].error and "Cl" in by["NaCl.cif"].error
    assert by["Cu.cif"].state == "completed" and by["Cu.cif"].site == "hollow4"
    mof = MofAdsorptionMaker(settings=SETTINGS, guests=["CO2"])
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 5\n")
    overlap = tmp_path / "overlap.cif"
    overlap.write_text(CIF.format(occ=1.0, x2=0.02))
    partial = tmp_path / "partial.cif"
    partial.write_text(CIF.format(occ=0.5, x2=0.5))
    docs = mof.run([str(bad), str(overlap), str(partial)])
    assert [d.state for d in docs] == ["failed"] * 3
    assert "cannot parse" in docs[0].error
    assert "overlapping sites" in docs[1].error
    assert "partially occupied" in docs[2].error


CIF = """data_test
_cell_length_a 8.0
_cell_length_b 8.0
_cell_length_c 8.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Cu1 Cu 0.0 0.0 0.0 {occ}
O1 O {x2} 0.0 0.0 1.0
"""
