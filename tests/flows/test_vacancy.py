"""Vacancy formation energies against an independent ASE loop driven by
sevenn's calculator; inequivalent sites against known crystallography; one
supercell and one site order however the crystal is written."""

from dataclasses import replace

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.build import bulk, molecule
from ase.optimize import BFGS
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core import load_model
from sevenomni_flows import ModelSettings, VacancyMaker
from sevenomni_flows.properties import vacancy
from sevenomni_flows.properties.vacancy import (
    canonical_primitive,
    inequivalent_sites,
    vacancy_supercells,
)
from sevenomni_flows.testing import ENTRIES, check
from sevenomni_flows.testing.representations import REPRESENTATIONS, representations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cu() -> Structure:
    return AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.63, cubic=True))


def test_cu_vacancy_matches_an_ase_loop(sevenn_calculator):
    """Cu given as its cubic cell, min_length 6 Å: the Maker builds 3x3x3
    primitive cells (27 atoms, widths 6.3 Å), and its E_vac equals
    E(26, relaxed) − 26/27 E(27) from sevenn's calculator and ASE's BFGS on
    that cell built by hand from the primitive cell, removing another
    (equivalent) atom than the Maker.  Planted: E_defect − E_bulk (no
    (N−1)/N) and the unrelaxed vacancy are both far from the oracle."""
    settings = ModelSettings(model="7net-0", device="cpu")
    [doc] = VacancyMaker(settings=settings, min_length=6.0).run(_cu())
    assert doc.state == "completed", doc.error
    assert doc.n_atoms == 27 and len(doc.sites) == 1
    assert doc.supercell_matrix == [[3, 0, 0], [0, 3, 0], [0, 0, 3]]

    calc = sevenn_calculator(load_model("7net-0").path)
    perfect = bulk("Cu", "fcc", a=3.63).repeat((3, 3, 3))
    perfect.calc = calc
    e_bulk = perfect.get_potential_energy()
    defect = perfect.copy()
    del defect[13]
    defect.calc = calc
    unrelaxed = defect.get_potential_energy() - 26 / 27 * e_bulk
    BFGS(defect, logfile=None).run(fmax=0.002, steps=300)
    oracle = defect.get_potential_energy() - 26 / 27 * e_bulk

    print(
        f"\nCu E_vac, 7net-0, 27 atoms: {doc.vacancy_formation_energy:.4f} eV "
        f"(ASE {oracle:.4f}, unrelaxed {unrelaxed:.4f})"
    )
    assert doc.vacancy_formation_energy == pytest.approx(oracle, abs=2e-3)
    assert doc.bulk_energy_per_atom == pytest.approx(e_bulk / 27, abs=1e-5)
    assert 0.5 < oracle < 2.0  # Cu: 1.28 eV measured, ~1.0-1.1 eV with PBE
    no_share = doc.defect_energies[0] - 27 * doc.bulk_energy_per_atom
    assert abs(no_share - oracle) > 1.0  # planted: E_bulk/N ≈ −4 eV off
    assert abs(unrelaxed - doc.vacancy_formation_energy) > 5e-3  # relaxation seen


def _rocksalt() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def _perovskite() -> Structure:
    return Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


@pytest.mark.parametrize(
    ("structure", "expected"),
    [
        (_cu, [("Cu", 1, "4a")]),
        (_rocksalt, [("Na", 1, "4a"), ("Cl", 1, "4b")]),
        (_perovskite, [("O", 3, "3c"), ("Ti", 1, "1b"), ("Sr", 1, "1a")]),
    ],
)
def test_inequivalent_sites_are_the_wyckoff_sites(structure, expected):
    """One site per Wyckoff position of the International Tables, given
    conventional cells: fcc Cu 4a; rocksalt 4a and 4b; cubic SrTiO3 1a, 1b
    and 3c; multiplicities of the primitive cell, sites by atomic number."""
    sites = inequivalent_sites(canonical_primitive(structure()))
    assert [(s["species"], s["multiplicity"], s["wyckoff"]) for s in sites] == expected


def test_supercells_are_wide_enough_and_lose_one_atom_of_the_site():
    """Every perpendicular width of the supercell is at least min_length
    (and one repeat fewer would not be); each defect cell lacks one atom of
    its site's species."""
    structure = _perovskite()
    primitive = canonical_primitive(structure)
    sites = inequivalent_sites(primitive)
    perfect, defects = vacancy_supercells(primitive, 9.0, sites)
    cell = perfect.cell.array
    widths = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    assert np.all(widths >= 9.0) and np.all(widths - 3.905 < 9.0)
    assert len(perfect) == 5 * 27
    for site, defect in zip(sites, defects, strict=True):
        assert len(defect) == len(perfect) - 1
        lost = perfect.get_chemical_symbols().count(site["species"])
        assert defect.get_chemical_symbols().count(site["species"]) == lost - 1


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"min_length": 0.0}, "vacancy.min_length"),
        ({"relax": {"fmax": -1.0}}, "vacancy.relax.fmax"),
        ({"symprec": 0.0}, "vacancy.symprec"),
    ],
)
def test_bad_settings_are_refused_by_name(setting, message):
    with pytest.raises(ValueError, match=message):
        VacancyMaker(**setting)


def _wurtzite() -> Structure:
    return AseAtomsAdaptor.get_structure(bulk("ZnO", "wurtzite", a=3.25, c=5.2))


def _rutile() -> Structure:
    return Structure.from_spacegroup(
        "P4_2/mnm",
        Lattice.tetragonal(4.59, 2.96),
        ["Ti", "O"],
        [[0] * 3, [0.305] * 2 + [0]],
    )


def _input_cell(structure, symprec=0.01):
    """The old method, planted: the input cell as it is written."""
    return AseAtomsAdaptor.get_atoms(structure)


def _input_order(structure, symprec=0.01):
    """A planted half-fix: spglib's primitive cell, atoms in the input's order."""
    cell = (structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers)
    lattice, positions, numbers = spglib.standardize_cell(
        cell, to_primitive=True, no_idealize=True, symprec=symprec
    )
    return Atoms(numbers=numbers, cell=lattice, scaled_positions=positions, pbc=True)


def _check_written_forms(structure: Structure, primitive=canonical_primitive):
    """Raise AssertionError unless every way of writing ``structure`` gives
    the same supercell (atoms, lengths, angles), the same sites in the same
    order, and the same environment of each removed atom (its distances to
    its 12 nearest atoms)."""
    seen = []
    for rep in representations(REPRESENTATIONS):
        cell = primitive(rep.build(structure))
        sites = inequivalent_sites(cell)
        perfect, _ = vacancy_supercells(cell, 7.0, sites)
        near = [
            np.sort(perfect.get_distances(s["index"], range(len(perfect)), mic=True))
            for s in sites
        ]
        named = [(s["species"], s["multiplicity"], s["wyckoff"]) for s in sites]
        seen.append((rep.name, perfect.cell.cellpar(), named, near))
    _, metric, named, near = seen[0]
    for name, other_metric, other_named, other_near in seen[1:]:
        np.testing.assert_allclose(other_metric, metric, atol=1e-4, err_msg=name)
        assert other_named == named, name
        for mine, theirs in zip(other_near, near, strict=True):
            np.testing.assert_allclose(mine[:13], theirs[:13], atol=1e-3, err_msg=name)


@pytest.mark.parametrize("structure", [_cu, _rocksalt, _wurtzite, _rutile])
def test_every_written_form_gives_one_supercell_and_one_site_order(structure):
    """Primitive, conventional, 2x1x1 and non-diagonal supercells, rotated
    and translated, permuted: one supercell, one site order, one removed
    atom's environment (no model: the cells the Maker relaxes)."""
    _check_written_forms(structure())


def test_the_written_forms_check_catches_the_old_methods():
    """Planted: the input cell repeated (the old method) gives fcc Cu
    supercells of different shapes (125 atoms from the primitive cell, 108
    from the cubic one at 10 Å; here at 7 Å); spglib's primitive cell with
    its atoms in the input's order lists rocksalt's sites in another order
    when the input lists its atoms so (Cl before Na)."""
    with pytest.raises(AssertionError):
        _check_written_forms(_cu(), _input_cell)
    with pytest.raises(AssertionError, match="Cl"):
        _check_written_forms(_rocksalt(), _input_order)


def test_harness_catches_the_input_cell_repeat(monkeypatch):
    """The invariance entry (MgO, primitive reference) fails on the
    conventional cell when the Maker repeats the input cell again: 64 atoms
    against 16, and formation energies far beyond 1e-4 eV."""
    monkeypatch.setattr(vacancy, "canonical_primitive", _input_cell)
    report = check(replace(ENTRIES["vacancy"], representations=("conventional",)))
    print(f"\n{report.table()}")
    failed = {r.field for r in report.failures()}
    assert {"n_atoms", "vacancy_formation_energy", "formation_energies"} <= failed
    with pytest.raises(AssertionError, match="vacancy_formation_energy"):
        report.assert_invariant()


def test_bad_materials_in_a_batch_fail_alone_naming_their_label():
    """One batch: Cu, Cu stretched to a = 4.3 Å (its vacancy relaxes far, and
    does not converge within the 15 steps that Cu needs) and a CO molecule in
    a box.  Each bad one fails with a reason naming its label; Cu completes
    with the value it has alone."""
    maker = VacancyMaker(
        settings=ModelSettings(model="7net-0", device="cpu"),
        min_length=6.0,
        relax={"max_steps": 15},
    )
    given = {
        "Cu": bulk("Cu", "fcc", a=3.63),
        "stretched-Cu": bulk("Cu", "fcc", a=4.3),
        "co-in-box": molecule("CO", vacuum=5.0, pbc=True),
    }
    structures = [AseAtomsAdaptor.get_structure(a) for a in given.values()]
    good, stretched, co = maker.run(structures, list(given))
    assert good.state == "completed", good.error
    assert stretched.state == co.state == "failed"
    assert stretched.error_type == "InnerRelaxationError"
    assert "vacancy supercells of Cu (label stretched-Cu) did not converge" in (
        stretched.error
    )
    assert co.error_type == "NotBulk" and "(label co-in-box)" in co.error
    [alone] = maker.run(structures[:1], ["Cu"])
    assert good.vacancy_formation_energy == pytest.approx(
        alone.vacancy_formation_energy, abs=1e-6
    )
