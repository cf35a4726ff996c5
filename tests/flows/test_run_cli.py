"""``sevenomni run`` and ``query``: specs, reuse of stored results, bad input."""

import json
import textwrap

import pytest

from sevenomni_flows.cli import main
from sevenomni_flows.spec import SpecError, load_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_spec(folder, body: str):
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(body))
    return path


FAST = """
model: 7net-0
device: cpu
relax: {fmax: 0.05, max_steps: 200}
eos: {linear_strains: [-0.02, -0.01, 0.0, 0.01, 0.02], relax: {fmax: 0.05}}
phonon: {supercell: [[2, 0, 0], [0, 2, 0], [0, 0, 2]]}
elastic: {strain_magnitudes: [-0.01, 0.01], relax: {fmax: 0.05}}
"""


def run(spec, store, capsys):
    status = main(["run", str(spec), "--store", str(store)])
    out = capsys.readouterr().out
    return status, out


def query(store, capsys, *args):
    status = main(["query", *args, "--store", str(store), "--format", "json"])
    assert status == 0
    return json.loads(capsys.readouterr().out)


def test_run_then_extend_reuses_results(tmp_path, capsys):
    """A repeated run computes nothing; adding a property computes only it."""
    spec = write_spec(
        tmp_path,
        FAST
        + """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {bulk: Al, crystal: fcc, a: 4.05}
properties: [relax, eos]
""",
    )
    store = tmp_path / "results"
    status, out = run(spec, store, capsys)
    assert status == 0 and "0 results reused" in out
    first = query(store, capsys)
    assert {(r["formula"], r["property"]) for r in first} == {
        ("Cu", "relax"),
        ("Cu", "eos"),
        ("Al", "relax"),
        ("Al", "eos"),
    }
    status, out = run(spec, store, capsys)
    assert "4 results reused, 0 to compute (0 structures to relax) in 0 jobs" in out
    spec.write_text(spec.read_text().replace("[relax, eos]", "[relax, eos, elastic]"))
    status, out = run(spec, store, capsys)
    assert "4 results reused, 2 to compute (0 structures to relax) in 1 jobs" in out
    rows = query(store, capsys, '{"property": "elastic"}')
    assert len(rows) == 2 and all(r["bulk_modulus_vrh"] > 50 for r in rows)
    assert len(query(store, capsys)) == 6  # nothing stored before was lost


def test_interrupted_run_resumes(tmp_path, capsys, monkeypatch):
    """After a run broken in its phonon jobs (the machine's fault: a lost
    connection), the next run computes only those."""
    import sevenomni_flows.properties.phonon as phonon_module

    spec = write_spec(
        tmp_path,
        FAST
        + """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {bulk: Si, crystal: diamond, a: 5.43}
properties: [relax, phonon, eos]
""",
    )
    store = tmp_path / "results"

    def crash(*args, **kwargs):
        raise ConnectionResetError("worker lost")

    monkeypatch.setattr(phonon_module, "set_forces", crash)
    status, _ = run(spec, store, capsys)
    assert status == 1
    broken = query(store, capsys, '{"property": "phonon"}')
    assert [r["error_type"] for r in broken] == ["ConnectionResetError"] * 2
    assert all("worker lost" in r["error"] for r in broken)
    monkeypatch.undo()
    status, out = run(spec, store, capsys)
    assert status == 0
    assert "4 results reused, 2 to compute (0 structures to relax) in 1 jobs" in out
    assert (
        len(query(store, capsys, '{"property": "phonon", "state": "completed"}')) == 2
    )


def test_bad_materials_fail_alone(tmp_path, capsys):
    """Unreadable files, unknown elements, overlapping atoms and blow-ups fail alone."""
    (tmp_path / "garbage.cif").write_text("this is not a CIF\n")
    (tmp_path / "og.xyz").write_text(
        '2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
        "Og 0 0 0\nCu 2.5 2.5 2.5\n"
    )
    (tmp_path / "overlap.xyz").write_text(
        '2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
        "Cu 0 0 0\nCu 0.2 0 0\n"
    )
    spec = write_spec(
        tmp_path,
        """
model: 7net-0
device: cpu
relax: {fmax: 0.05, max_steps: 200, max_volume_change: 1.05}
eos: {linear_strains: [-0.02, -0.01, 0.0, 0.01, 0.02], relax: {fmax: 0.05}}
structures:
  - {bulk: Si, crystal: diamond, a: 5.43}
  - file: garbage.cif
  - file: og.xyz
  - file: overlap.xyz
  - {bulk: Cu, crystal: fcc, a: 3.2, name: squeezed-Cu}
properties: [relax, eos]
""",
    )
    store = tmp_path / "results"
    status, out = run(spec, store, capsys)
    assert status == 1
    rows = query(store, capsys)
    si = [r for r in rows if r["formula"] == "Si"]
    assert {r["state"] for r in si} == {"completed"} and len(si) == 2
    failed = {r["label"]: r["error"] for r in rows if r["state"] == "failed"}
    assert "Og" in failed["og.xyz"] and "not covered by 7net-0" in failed["og.xyz"]
    assert "0.200 Å apart" in failed["overlap.xyz"]
    assert "volume safety net" in failed["squeezed-Cu"]
    assert "garbage.cif" in out and "cannot read" in out  # reported in the summary
    assert "cannot read" in failed["garbage.cif"]  # and stored, for query
    skipped = {r["label"] for r in rows if r["state"] == "skipped"}
    assert skipped == {"og.xyz", "overlap.xyz", "squeezed-Cu"}  # their EOS


def test_spec_errors_name_key_and_line(tmp_path):
    """Unknown keys and wrong types are reported with the key and its line."""
    spec = write_spec(
        tmp_path,
        """
model: 7net-0
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {bulk: Al, crystl: fcc}
relax:
  fmax: fast
propertys: [relax]
""",
    )
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    text = str(err.value)
    assert "structures.1.crystl: unknown key" in text and "spec.yaml:5" in text
    assert "relax.fmax" in text and "spec.yaml:7" in text
    assert "propertys: unknown key" in text and "spec.yaml:8" in text


def test_query_formats_and_filters(tmp_path, capsys, monkeypatch):
    """Mongo-style filters on summary fields, numbers read as numbers in JSON
    and YAML (planted bug: plain ``yaml.safe_load`` reads ``1e-4`` as a
    string and they find nothing); table, CSV and JSON output."""
    import yaml

    from sevenomni_flows import summary

    spec = write_spec(
        tmp_path,
        FAST
        + """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
properties: [relax]
""",
    )
    store = tmp_path / "results"
    run(spec, store, capsys)
    rows = query(
        store, capsys, '{"model.name": "7net-0", "energy_per_atom": {"$lt": 0}}'
    )
    assert len(rows) == 1 and rows[0]["converged"] is True
    assert rows[0]["model"]["sha256"]
    assert not query(store, capsys, '{"formula": "Xx"}')
    assert_numbers_are_numbers(store, capsys)
    with monkeypatch.context() as planted:
        planted.setattr(summary, "read_filter", yaml.safe_load)
        with pytest.raises(AssertionError):
            assert_numbers_are_numbers(store, capsys)
    assert main(["query", "--store", str(store), "--format", "csv"]) == 0
    csv_text = capsys.readouterr().out
    assert csv_text.splitlines()[0].startswith("label,formula,structure_id,property")
    assert main(["query", "{not yaml", "--store", str(store)]) == 2
    assert main(["query", "--store", str(tmp_path / "nowhere")]) == 2


#: Filters on a Cu relaxation (energy about -4 eV/atom, volume about 12 A^3/atom)
#: whose every bound is a number YAML 1.1 reads as a string unless told.
NUMBER_FILTERS = (
    '{"energy_per_atom": {"$lt": -3E-5}}',  # JSON
    "{energy_per_atom: {$lt: -3E-5}}",  # YAML
    "{energy_per_atom: {$gt: -1e1, $lt: .5}}",
    "{energy_per_atom: {$lt: -.5}}",
    '{"property": "relax", "volume_per_atom": {"$gt": 1e-4}}',
    "{volume_per_atom: {$gt: 1e-4}}",
)


def assert_numbers_are_numbers(store, capsys):
    """Each of :data:`NUMBER_FILTERS` finds the one Cu relaxation."""
    for text in NUMBER_FILTERS:
        assert [r["formula"] for r in query(store, capsys, text)] == ["Cu"], text


def test_store_file_and_unconverged_relaxation(tmp_path, capsys):
    """A jobflow store file selects the store; an unconverged relaxation is not used."""
    db = tmp_path / "db"
    store_file = tmp_path / "jobstore.yaml"
    store_file.write_text(
        textwrap.dedent(f"""
        docs_store:
          type: MontyStore
          database_path: {db}
          database_name: sevenomni
          collection_name: outputs
        additional_stores:
          data:
            type: MontyStore
            database_path: {db}
            database_name: sevenomni
            collection_name: outputs_data
          results:
            type: MontyStore
            database_path: {db}
            database_name: sevenomni
            collection_name: results
            key: key
        """)
    )
    spec = write_spec(
        tmp_path,
        FAST.replace("max_steps: 200", "max_steps: 1")
        + """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.70}
properties: [relax, eos]
""",
    )
    status, _ = run(spec, store_file, capsys)
    assert status == 1
    rows = {r["property"]: r for r in query(store_file, capsys)}
    assert rows["relax"]["state"] == "completed" and rows["relax"]["converged"] is False
    assert rows["eos"]["state"] == "skipped"
    assert "did not converge" in rows["eos"]["error"]
    assert db.is_dir()


def test_adsorption_specs_run_and_reuse(tmp_path, capsys):
    """Surface and MOF adsorption through a spec; a rerun reuses the results."""
    import shutil
    from pathlib import Path

    mof = Path(__file__).parents[2] / "workflows" / "structures" / "Mg-MOF-74.cif"
    shutil.copy(mof, tmp_path / "mof.cif")
    spec = write_spec(
        tmp_path,
        """
model: 7net-0
device: cpu
relax: {fmax: 0.05}
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {bulk: NaCl, crystal: rocksalt, a: 5.64}
properties: [relax, adsorption]
adsorption:
  miller_indices: [[1, 0, 0]]
  adsorbates: [H]
  slab: {layers: 3, fixed_layers: 1, supercell: [2, 2], vacuum: 12}
  relax: {max_steps: 150}
frameworks:
  - {file: mof.cif, name: Mg-MOF-74, guests: [H2]}
mof: {n_random: 0, max_metal_sites: 1, relax: {fmax: 0.1, max_steps: 60}}
""",
    )
    store = tmp_path / "results"
    status, out = run(spec, store, capsys)
    assert status == 1  # NaCl fails, alone
    rows = query(store, capsys, '{"property": "adsorption"}')
    by = {(r["host"], r["adsorbate"]): r for r in rows}
    cu = by[("Cu(100)", "H")]
    assert cu["state"] == "completed" and cu["site"] == "hollow4"
    assert cu["adsorption_energy"] < 0 and cu["n_candidates"] >= 3
    assert "not a metal" in by[("NaCl(100)", "H")]["error"]
    mg = by[("Mg-MOF-74", "H2")]
    assert mg["reference_scheme"] == "gas" and mg["n_candidates"] == 1
    assert mg["plots"]
    status, out = run(spec, store, capsys)
    reused = int(out.split(" results reused")[0].rsplit(" ", 1)[1])
    # both bulk relaxations, Cu's H, and the MOF when its guest converged
    assert reused == 3 + (mg["state"] == "completed")
    assert len(query(store, capsys, '{"property": "adsorption"}')) == 3  # no pile-up


def test_retry_policy_keeps_deterministic_failures(tmp_path, capsys, monkeypatch):
    """A failure a rerun cannot fix (here a ValueError in the elastic job) is
    kept by a rerun, and recomputed with --retry-failed; a transient one (a
    MemoryError in the EOS job) is retried by a plain rerun."""
    from sevenomni_flows.properties import ElasticMaker, EosMaker

    spec = write_spec(
        tmp_path,
        FAST
        + """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
properties: [relax, elastic, eos]
""",
    )
    store = tmp_path / "results"

    def bad_input(self, items, targets, ctx):
        raise ValueError("deterministic")

    def out_of_memory(self, items, targets, ctx):
        raise MemoryError("transient")

    with monkeypatch.context() as m:
        m.setattr(ElasticMaker, "compute", bad_input)
        m.setattr(EosMaker, "compute", out_of_memory)
        status, out = run(spec, store, capsys)
    assert status == 1 and "1 completed, 2 failed" in out
    docs = {r["property"]: r for r in query(store, capsys)}
    assert docs["elastic"]["error_type"] == "ValueError"
    assert docs["eos"]["error_type"] == "MemoryError"

    status, out = run(spec, store, capsys)  # a plain rerun
    assert "1 failures kept" in out and "1 to compute" in out
    docs = {r["property"]: r for r in query(store, capsys)}
    assert docs["eos"]["state"] == "completed"
    assert docs["elastic"]["state"] == "failed"
    assert status == 1 and "--retry-failed" in out

    status = main(["run", str(spec), "--store", str(store), "--retry-failed"])
    capsys.readouterr()
    docs = {r["property"]: r for r in query(store, capsys)}
    assert status == 0 and docs["elastic"]["state"] == "completed"
    assert len(query(store, capsys)) == 3  # one document per calculation


def test_constraints_are_part_of_a_structure_identity(tmp_path, capsys):
    """A cell with two fixed atoms is not served the free cell's stored
    relaxation: it is computed, under its own key, and its fixed atoms stay."""
    import numpy as np
    from ase.build import bulk
    from ase.constraints import FixAtoms
    from ase.io import write

    free = bulk("Cu", "fcc", a=3.61, cubic=True)
    free.rattle(0.08, seed=4)
    fixed = free.copy()
    fixed.set_constraint(FixAtoms([0, 1]))
    write(tmp_path / "free.vasp", free, format="vasp")
    write(tmp_path / "fixed.vasp", fixed, format="vasp")
    body = FAST + "properties: [relax]\nrelax: {fmax: 0.02, relax_cell: false}\n"
    store = tmp_path / "results"
    spec = write_spec(tmp_path, body + "structures: [{file: free.vasp}]\n")
    assert run(spec, store, capsys)[0] == 0
    spec = write_spec(
        tmp_path, body + "structures: [{file: free.vasp}, {file: fixed.vasp}]\n"
    )
    status, out = run(spec, store, capsys)
    assert status == 0 and "1 results reused, 1 to compute" in out
    docs = {r["label"]: r for r in query(store, capsys, '{"property": "relax"}')}
    assert len(docs) == 2 and docs["fixed.vasp"]["key"] != docs["free.vasp"]["key"]
    from sevenomni_flows.run import open_store
    from sevenomni_flows.stores.results import results_store

    [doc] = results_store(open_store(store)).query({"label": "fixed.vasp"})
    final = np.array(doc["structure"]["sites"][0]["xyz"])
    np.testing.assert_allclose(final, fixed.positions[0], atol=1e-6)


def test_each_ase_constraint_is_honoured_or_fails_its_structure(
    tmp_path, capsys, monkeypatch
):
    """The issue's ASE db: four copies of one Cu cell, free, FixedLine,
    FixBondLength and FixSymmetry.  The two constraints the engine cannot
    honour fail their own structure, naming the constraint (they used to be
    dropped with an anonymous pymatgen warning, and all four merged into one
    result); the FixSymmetry copy is relaxed under its own id."""
    import warnings

    from ase.build import bulk
    from ase.constraints import FixBondLength, FixedLine, FixSymmetry
    from ase.db import connect

    cu = bulk("Cu", "fcc", a=3.7, cubic=True)
    copies = {name: cu.copy() for name in ("free", "fixedline", "fixbond", "fixsym")}
    copies["fixedline"].set_constraint(FixedLine(0, [0, 0, 1]))
    copies["fixbond"].set_constraint(FixBondLength(0, 1))
    copies["fixsym"].set_constraint(FixSymmetry(copies["fixsym"], symprec=0.05))
    with connect(tmp_path / "cu.db") as db:
        for name, atoms in copies.items():
            db.write(atoms, name=name)
    spec = write_spec(
        tmp_path, FAST + "properties: [relax]\nstructures: [{file: cu.db}]\n"
    )

    def check(store):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status, out = run(spec, store, capsys)
        assert not [w for w in caught if "onstraint" in str(w.message)]
        assert status == 1
        assert "2 failed, 0 skipped, 0 missing; 0 relaxations unconverged" in out
        docs = {r["label"]: r for r in query(store, capsys)}
        assert set(docs) == set(copies)
        for name, cls in (("fixedline", "FixedLine"), ("fixbond", "FixBondLengths")):
            assert docs[name]["state"] == "failed"
            assert f"{name}: " in docs[name]["error"]
            assert f"constraint {cls} is not supported" in docs[name]["error"]
        assert docs["free"]["state"] == docs["fixsym"]["state"] == "completed"
        assert docs["free"]["structure_id"] != docs["fixsym"]["structure_id"]

    check(tmp_path / "results")
    # planted: pymatgen's conversion, which drops what it cannot hold
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    import sevenomni_flows.jobs.base as base

    def old(obj):
        return obj if isinstance(obj, Structure) else AseAtomsAdaptor.get_structure(obj)

    monkeypatch.setattr(base, "as_structure", old)
    with pytest.raises(AssertionError):
        check(tmp_path / "planted")


def _store_docs(store):
    from sevenomni_flows.run import open_store
    from sevenomni_flows.stores.results import results_store

    return list(results_store(open_store(store)).query({}))


def test_labels_are_aliases_not_identity(tmp_path, capsys):
    """Identical structures under two names are computed once and found by
    either name; a renamed entry is found by its new name without a
    recompute; glob files keep their paths; a frame's own name labels it."""
    from ase.build import bulk
    from ase.io import write

    for name, a in (("mp-1", 3.61), ("mp-2", 4.05)):
        (tmp_path / name).mkdir()
        write(tmp_path / name / "POSCAR", bulk("Cu", "fcc", a=a), format="vasp")
    frames = [bulk("Cu", "fcc", a=3.62), bulk("Cu", "fcc", a=3.63)]
    frames[0].info["name"] = "copper-A"
    frames[1].info["name"] = "copper-B"
    write(tmp_path / "named.extxyz", frames)
    body = FAST + "properties: [relax]\n"
    store = tmp_path / "results"
    spec = write_spec(
        tmp_path,
        body
        + """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61, name: copper}
  - {bulk: Cu, crystal: fcc, a: 3.61, name: Cu-again}
  - {glob: "mp-*/POSCAR"}
  - {file: named.extxyz}
""",
    )
    status, out = run(spec, store, capsys)
    # copper, Cu-again and mp-1/POSCAR are one structure: one relaxation
    assert status == 0 and "4 materials" in out and "4 to compute" in out
    assert "copper, Cu-again, mp-1/POSCAR" in out
    assert len(_store_docs(store)) == 4
    for name in ("copper", "Cu-again", "mp-1/POSCAR"):
        [row] = query(store, capsys, json.dumps({"label": name}))
        assert row["formula"] == "Cu"
    [one] = query(store, capsys, '{"label": "copper"}')
    assert "mp-1/POSCAR" in one["sources"] and "bulk Cu (fcc)" in one["sources"]
    assert {r["label"] for r in query(store, capsys, '{"label": "copper-B"}')} == {
        "copper-B"
    }
    assert query(store, capsys, '{"label": "mp-2/POSCAR"}')[0]["sources"] == [
        "mp-2/POSCAR"
    ]
    spec.write_text(spec.read_text().replace("name: Cu-again", "name: renamed"))
    status, out = run(spec, store, capsys)
    assert status == 0 and "0 to compute" in out
    assert len(query(store, capsys, '{"label": "renamed"}')) == 1
    assert len(_store_docs(store)) == 4


def test_a_fixed_input_file_leaves_one_current_document(tmp_path, capsys):
    """A bad file's failure is keyed by the input, not its error: a changed
    bad file replaces it, a fixed one retires it; the counts match the store."""
    bad = tmp_path / "x.cif"
    bad.write_text("data_x\n_cell_length_a 3.6\n")
    spec = write_spec(
        tmp_path,
        FAST + "properties: [relax]\nstructures:\n"
        "  - {file: x.cif}\n  - {file: x.cif}\n",
    )
    store = tmp_path / "results"
    status, out = run(spec, store, capsys)
    assert status == 1 and "0 to compute" in out
    assert [d["state"] for d in _store_docs(store)] == ["failed"]
    bad.write_text("data_x\n_cell_length_b 3.6\n")  # still bad, differently
    status, out = run(spec, store, capsys)
    assert status == 1 and [d["state"] for d in _store_docs(store)] == ["failed"]
    from ase.build import bulk
    from ase.io import write

    write(bad, bulk("Cu", "fcc", a=3.61))
    status, out = run(spec, store, capsys)
    assert status == 0 and "0 failed" in out
    docs = _store_docs(store)
    assert [(d["property"], d["state"]) for d in docs] == [("relax", "completed")]
    assert query(store, capsys, '{"state": "failed"}') == []


def test_query_shows_rows_that_mix_protocols(tmp_path, capsys):
    """Rows in float32 and float64 are not alike: the table gets a dtype
    column and says so; CSV always has the protocol columns."""
    body = (
        FAST + "properties: [relax]\nstructures: [{bulk: Cu, crystal: fcc, a: 3.6}]\n"
    )
    store = tmp_path / "results"
    run(write_spec(tmp_path, body), store, capsys)
    run(write_spec(tmp_path, body + "dtype: float64\n"), store, capsys)
    assert main(["query", '{"property": "relax"}', "--store", str(store)]) == 0
    table = capsys.readouterr().out
    title, header = table.splitlines()[:2]
    assert "rows differ in dtype" in title and "dtype" in header.split()
    assert "float32" in table and "float64" in table
    main(["query", "{}", "--store", str(store), "--format", "csv"])
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert {"task", "dtype", "dispersion", "settings"} <= set(header)


def test_bulk_only_properties_refuse_a_molecule_in_a_box(tmp_path, capsys, monkeypatch):
    """A CO molecule in a box is relaxed and its static energy computed, but
    its EOS and elastic documents fail with the reason; the Cu crystal beside
    it completes everything, and the run exits 1.  Planted bug: without the
    bulk-only flag the molecule's EOS "completes" (a wrong success)."""
    from ase.build import molecule
    from ase.io import write

    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.properties import EosMaker

    co = molecule("CO", vacuum=5.0, pbc=True)
    write(tmp_path / "co.extxyz", co)
    spec = write_spec(
        tmp_path,
        FAST
        + """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {file: co.extxyz}
properties: [relax, static, eos, elastic]
""",
    )
    status, _ = run(spec, tmp_path / "results", capsys)
    assert status == 1
    rows = query(tmp_path / "results", capsys)
    states = {(r["formula"], r["property"]): r["state"] for r in rows}
    assert states == {
        **{("Cu", p): "completed" for p in ("relax", "static", "eos", "elastic")},
        ("CO", "relax"): "completed",
        ("CO", "static"): "completed",
        ("CO", "eos"): "failed",
        ("CO", "elastic"): "failed",
    }
    for prop in ("eos", "elastic"):
        [row] = [r for r in rows if (r["formula"], r["property"]) == ("CO", prop)]
        assert row["error_type"] == "NotBulk"
        assert row["error"] == (
            "CO (label co.extxyz): not a 3D bulk crystal: its bonded network is "
            f"0D (a molecule or cluster in a box); {prop} needs a bulk"
        )
    maker = EosMaker(settings=ModelSettings("7net-0", device="cpu"))
    assert maker.run([co], ["co"])[0].error_type == "NotBulk"
    monkeypatch.setattr(EosMaker, "bulk_only", False)  # planted
    assert maker.run([co], ["co"])[0].state == "completed"


def test_guards_through_run_fail_alone_with_their_reasons(tmp_path, capsys):
    """Where a number cannot be right, ``sevenomni run`` stores a failed
    document with the reason and completes the rest, exiting 1: QHA at a
    pressure whose volumes lie outside the sampled ones, a bulk whose
    surfaces come out more stable than itself (Cu stretched to a = 4.3 Å,
    γ < 0 on every facet), the same stretched Cu's imaginary modes, and a
    molecule in a box for the bulk-only properties.  Cu itself completes."""
    from ase.build import molecule
    from ase.io import write

    write(tmp_path / "co.extxyz", molecule("CO", vacuum=5.0, pbc=True))
    spec = write_spec(
        tmp_path,
        """
model: 7net-0
device: cpu
structures:
  - {bulk: Cu, crystal: fcc, a: 3.62}
  - {bulk: Cu, crystal: fcc, a: 4.3}
  - {file: co.extxyz}
properties: [relax, qha, surface_energy]
relax: {fmax: 0.05, relax_cell: false}
qha:
  pressures: [0.0, 30.0]
  linear_strain: [-0.03, 0.03]
  min_length: 7.0
  t_max: 600.0
  displacement: 0.03
surface_energy:
  miller_indices: [[1, 0, 0], [1, 1, 1]]
  slab: {layers: 4, fixed_layers: 0, supercell: [1, 1], vacuum: 10.0}
""",
    )
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 1
    assert "5 completed, 7 failed, 0 skipped, 0 missing" in out
    rows = query(tmp_path / "r", capsys)
    relaxed = {r["key"]: r["volume_per_atom"] for r in rows if r["property"] == "relax"}
    assert all(r["state"] == "completed" for r in rows if r["property"] == "relax")

    def row(prop, volume, **where):
        found = [
            r
            for r in rows
            if r["property"] == prop
            and relaxed.get(r["protocol"]["on"], 0) == pytest.approx(volume, rel=0.05)
            and all(r.get(k) == v for k, v in where.items())
        ]
        assert len(found) == 1, (prop, volume, where, len(found))
        return found[0]

    cu, wide = 3.62**3 / 4, 4.3**3 / 4
    assert row("qha", cu, pressure=0.0)["state"] == "completed"
    high = row("qha", cu, pressure=30.0)
    assert high["state"] == "failed" and high["error_type"] == "VolumeOutOfRange"
    assert high["error"].startswith(
        "at 30.0 GPa, V(T) lies outside the sampled volumes"
    )
    assert "the values at 300 K would be extrapolated" in high["error"]
    for pressure in (0.0, 30.0):
        soft = row("qha", wide, pressure=pressure)
        assert soft["error_type"] == "ImaginaryModes", soft["error"]
    good = row("surface_energy", cu)
    assert good["state"] == "completed"
    assert all(g > 0 for g in good["surface_energies"].values())
    bad = row("surface_energy", wide)
    assert bad["state"] == "failed"
    assert bad["error"].startswith("no facet of Cu gives a surface energy")
    assert "Cu (1 0 0): γ = -1.1" in bad["error"] and "is negative" in bad["error"]
    for prop in ("qha", "surface_energy"):
        co = [r for r in rows if r["formula"] == "CO" and r["property"] == prop]
        assert co and all(r["error_type"] == "NotBulk" for r in co)


def test_a_failed_relaxation_is_not_counted_unconverged():
    """The run's tally: a relaxation that failed (a refused input, a guard)
    never ran to its end, so it counts as failed, not as unconverged; a
    completed one that stopped at max_steps does."""
    from types import SimpleNamespace

    from sevenomni_flows.run.report import tally

    rows = [
        {"property": "relax", "state": "failed", "converged": False},
        {"property": "relax", "state": "completed", "converged": False},
        {"property": "relax", "state": "completed", "converged": True},
    ]
    counts = tally(SimpleNamespace(planned=["a", "b", "c"]), rows)
    assert counts == {
        "completed": 2,
        "failed": 1,
        "skipped": 0,
        "missing": 0,
        "unconverged": 1,
    }
