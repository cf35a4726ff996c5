"""Formation energies and energies above the hull against pymatgen's
PhaseDiagram built by hand from sevenn's energies of the same relaxed
structures; decompositions; one job over the set; missing references."""

import json
import textwrap

import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core import load_model
from sevenomni_flows.cli import main
from sevenomni_flows.flows import ScreeningMaker
from sevenomni_flows.jobs.base import Item
from sevenomni_flows.properties import StabilityMaker
from sevenomni_flows.properties.stability.elements import prototype, references
from sevenomni_flows.run.store import open_store
from sevenomni_flows.stores.results import results_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = """
model: 7net-0
device: cpu
relax: {fmax: 0.05, max_steps: 200}
properties: [relax, stability]
structures:
  - {bulk: MgO, crystal: rocksalt, a: 4.21, name: rocksalt}
  - {file: Mg2O.cif}
  - {file: MgO_cscl.cif}
  - {bulk: MgS, crystal: rocksalt, a: 5.2, name: MgS}
"""


def _inputs(folder):
    """Mg2O (anti-fluorite, above the hull: Mg + MgO) and CsCl-type MgO."""
    Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.0), ["O", "Mg"], [[0, 0, 0], [0.25] * 3]
    ).to(filename=str(folder / "Mg2O.cif"))
    Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(2.6), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]
    ).to(filename=str(folder / "MgO_cscl.cif"))


def test_hull_matches_phase_diagram_built_by_hand(tmp_path, capsys, sevenn_calculator):
    """Every relaxed structure (references included) evaluated by sevenn's
    calculator, a PhaseDiagram built by hand: the same formation energies
    and e_above_hull to 1e-4 eV/atom.  Mg2O decomposes to MgO + Mg in the
    lever-rule fractions, CsCl-type MgO to rocksalt MgO; MgS fails alone
    for want of a sulfur reference, and the run exits 1, again on a rerun
    that computes nothing."""
    _inputs(tmp_path)
    status, _, docs = _run_text(tmp_path, capsys, textwrap.dedent(SPEC))
    assert status == 1
    relaxed = {d["label"]: d for d in docs if d["property"] == "relax"}
    assert {"reference:Mg", "reference:O"} <= set(relaxed)
    assert "reference:S" not in relaxed  # none shipped
    stab = {d["label"]: d for d in docs if d["property"] == "stability"}
    assert set(stab) == {"rocksalt", "Mg2O.cif", "MgO_cscl.cif", "MgS"}
    assert stab["MgS"]["state"] == "failed"
    assert "no elemental reference for S" in stab["MgS"]["error"]
    calc = sevenn_calculator(load_model("7net-0").path)
    entries = {}
    for label, doc in relaxed.items():
        if label == "MgS":
            continue
        atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(doc["structure"]))
        atoms.calc = calc
        entries[label] = PDEntry(
            Structure.from_dict(doc["structure"]).composition,
            atoms.get_potential_energy(),
        )
    diagram = PhaseDiagram(list(entries.values()))
    for label in ("rocksalt", "Mg2O.cif", "MgO_cscl.cif"):
        doc, entry = stab[label], entries[label]
        assert doc["state"] == "completed", doc["error"]
        assert doc["formation_energy_per_atom"] == pytest.approx(
            diagram.get_form_energy_per_atom(entry), abs=1e-4
        )
        assert doc["e_above_hull"] == pytest.approx(
            diagram.get_e_above_hull(entry), abs=1e-4
        )
    assert stab["rocksalt"]["e_above_hull"] == pytest.approx(0.0, abs=1e-6)
    assert stab["rocksalt"]["formation_energy_per_atom"] < -2.0
    assert stab["MgO_cscl.cif"]["decomposition"] == pytest.approx({"MgO": 1.0})
    # Mg2O (3 atoms) -> MgO (2 atoms) + Mg (1 atom)
    assert stab["Mg2O.cif"]["decomposition"] == pytest.approx(
        {"MgO": 2 / 3, "Mg": 1 / 3}, abs=1e-6
    )
    assert stab["Mg2O.cif"]["e_above_hull"] > 0.1
    assert stab["Mg2O.cif"]["references"]["O"]["label"] == "reference:O"
    assert stab["rocksalt"]["plots"]  # a binary's phase diagram
    # a rerun keeps the deterministic failure and computes nothing: exit 1
    status, out, again = _run_text(tmp_path, capsys, textwrap.dedent(SPEC))
    assert status == 1 and "0 to compute" in out
    assert {d["key"] for d in again} == {d["key"] for d in docs}


def test_one_job_over_chunks_and_hull_entries(tmp_path, capsys):
    """With two structures per job the hull is still one job over the whole
    set (the same keys and numbers); a rerun reuses all; a hull_entries file
    with a MgO entry 0.1 eV/atom below ours puts rocksalt MgO 0.1 eV/atom
    above the hull, under new keys; an unreadable file is named."""
    lean = "  - {bulk: MgO, crystal: rocksalt, a: 4.21, name: rocksalt}\n"
    spec = textwrap.dedent(SPEC).split("structures:")[0] + "structures:\n" + lean
    status, out, docs = _run_text(tmp_path, capsys, spec + _chunks())
    assert status == 0, out
    # two relaxation jobs (MgO and its two references), one hull job
    assert "in 3 jobs" in out and "stability: 1 documents" in out
    [first] = [d for d in docs if d["property"] == "stability"]
    status, out, _ = _run_text(tmp_path, capsys, spec + _chunks())
    assert status == 0 and "0 to compute" in out
    energy = first["energy_per_atom"] - 0.1
    mgo = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]
    )
    (tmp_path / "mp.json").write_text(
        json.dumps([ComputedEntry(mgo.composition, energy * len(mgo)).as_dict()])
    )
    status, out, docs = _run_text(
        tmp_path, capsys, spec + _chunks() + "stability: {hull_entries: mp.json}\n"
    )
    assert status == 0, out
    current = [
        d for d in docs if d["property"] == "stability" and d["key"] != first["key"]
    ]
    [doc] = current
    assert doc["e_above_hull"] == pytest.approx(0.1, abs=1e-4)
    assert doc["decomposition"] == pytest.approx({"MgO": 1.0})
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(spec + "stability: {hull_entries: missing.json}\n")
    assert main(["run", str(spec_path), "--store", str(tmp_path / "results")]) != 0
    captured = capsys.readouterr()
    assert "stability.hull_entries" in captured.out + captured.err


def _chunks():
    return "cluster: {structures_per_job: 2}\n"


def _run_text(folder, capsys, text):
    """Run a spec; its exit status, output and the current documents."""
    spec = folder / "spec.yaml"
    spec.write_text(text)
    status = main(["run", str(spec), "--store", str(folder / "results")])
    out = capsys.readouterr().out
    assert main(["query", "--store", str(folder / "results"), "--format", "json"]) == 0
    keys = {d["key"] for d in json.loads(capsys.readouterr().out)}
    store = open_store(folder / "results")
    docs = [d for d in results_store(store).query({}) if d["key"] in keys]
    store.close()
    return status, out, docs


def test_keys_cover_the_set_and_references():
    """The hull digest changes with the set and only with it; references
    owe no document; the shipped table names its gaps."""
    maker = StabilityMaker()
    items = [
        Item("MgO", "a", "MgO", "k1"),
        Item("Mg", "b", "reference:Mg", "k2", role="reference"),
    ]
    one = maker.over(items).hull
    assert maker.over(list(reversed(items))).hull == one
    assert maker.over([*items, Item("Mg2O", "c", "Mg2O", "k3")]).hull != one
    assert maker.targets(items[1], load_model("7net-0"), None) == []
    assert prototype("Cu") is not None and prototype("S") is None
    assert len(prototype("O")) == 2  # O2 in a box
    mixed = [
        prototype("Cu"),
        Structure(Lattice.cubic(5), ["Mg", "S"], [[0] * 3, [0.5] * 3]),
    ]
    labels = [label for label, _ in references(mixed)]
    assert labels == ["reference:Cu", "reference:Mg"]


def _check_label_is_no_role(structures, labels):
    """A screening of ``structures`` labelled ``labels`` (all materials)
    computes each per-material property on every one of them, and owes
    each a stability document."""
    screening = ScreeningMaker(properties=["relax", "eos", "stability"])
    jobs = {j.name.split(" (")[0]: j for j in screening.make(structures, labels).jobs}
    _, _, eos_labels, *_ = jobs["eos"].function_args
    assert eos_labels == labels  # every material screened
    stability, _, stab_labels, _, _, roles = jobs["stability"].function_args
    pot = load_model("7net-0")
    for label, role in zip(stab_labels, roles, strict=True):
        item = Item("Cu", "a", label, "k", role=role)
        assert bool(stability.targets(item, pot, None)) == (label in labels), label


def test_a_material_labelled_reference_is_a_material(monkeypatch):
    """The role of an input is a typed field, not its label: a material
    literally labelled ``reference:Cu`` gets its EOS and its stability
    document like any other; the shipped Ag reference added beside it owes
    none.  Planted: roles told by the old label prefix drop the material
    from the EOS job and from the hull's documents."""
    cu = Structure(
        Lattice.cubic(3.7),
        ["Cu"] * 4,
        [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]],
    )
    ag = Structure(
        Lattice.cubic(4.2),
        ["Ag"] * 4,
        [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]],
    )
    structures, labels = [cu, ag], ["reference:Cu", "silver"]
    _check_label_is_no_role(structures, labels)

    inputs = ScreeningMaker.inputs

    def by_prefix(self, structures, labels):  # the old rule: a label prefix
        structures, labels, _ = inputs(self, structures, labels)
        roles = [
            "reference" if s.startswith("reference:") else "material" for s in labels
        ]
        return structures, labels, roles

    monkeypatch.setattr(ScreeningMaker, "inputs", by_prefix)
    with pytest.raises(AssertionError):
        _check_label_is_no_role(structures, labels)


def test_mp2020_corrections_and_their_refusal():
    """mp2020 adds pymatgen's MP2020 correction (the oxide anion correction
    for MgO, GGA+U and its U correction for FeO, nothing for Mg), and is
    refused by name for an r2SCAN task, failing its materials alone."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.properties.stability.maker import mp2020

    def rocksalt(metal):
        return Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(4.3), [metal, "O"], [[0, 0, 0], [0.5] * 3]
        )

    entries = [
        ComputedStructureEntry(rocksalt("Mg"), -48.0),
        ComputedStructureEntry(rocksalt("Fe"), -56.0),
        ComputedStructureEntry(prototype("Mg"), -3.2),
    ]
    assert mp2020(entries) == {}
    assert entries[1].parameters["run_type"] == "GGA+U"
    compat = MaterialsProject2020Compatibility(check_potcar=False)
    oracle = [
        ComputedStructureEntry(rocksalt("Mg"), -48.0, parameters={"run_type": "GGA"}),
        ComputedStructureEntry(
            rocksalt("Fe"),
            -56.0,
            parameters={"run_type": "GGA+U", "hubbards": {"Fe": 5.3}},
        ),
    ]
    for ours, theirs in zip(entries, oracle, strict=False):
        assert ours.energy == pytest.approx(compat.process_entry(theirs).energy)
    assert entries[0].correction < 0 and entries[2].correction == 0
    maker = StabilityMaker(
        settings=ModelSettings("7net-mf-0", task="R2SCAN", device="cpu"),
        corrections="mp2020",
    )
    [doc] = maker.run([rocksalt("Mg")])
    assert doc.state == "failed"
    assert "stability.corrections: mp2020" in doc.error and "R2SCAN" in doc.error


def _elements_file(path, shift):
    """Mg and O entries at ``shift`` eV/atom: formation energies against
    them are the energy per atom minus ``shift``."""
    entries = [ComputedEntry(el, shift) for el in ("Mg", "O")]
    path.write_text(json.dumps([e.as_dict() for e in entries]))
    return path.name


def test_each_task_hull_has_its_own_entries(tmp_path):
    """With task -> file, each task's hull holds its own file only: rocksalt
    MgO's formation energy at PBE is against Mg, O at 0 eV/atom, at R2SCAN
    against Mg, O at +1 eV/atom.  Planted bug: one file joining every task's
    hull (the PBE file for both) gives R2SCAN a formation energy 1 eV/atom
    off, and the check fails."""
    from sevenomni_flows.jobs import ModelSettings

    files = {
        "PBE": _elements_file(tmp_path / "pbe.json", 0.0),
        "R2SCAN": _elements_file(tmp_path / "r2scan.json", 1.0),
    }
    mgo = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]
    )
    maker = StabilityMaker(
        settings=ModelSettings("7net-mf-0", device="cpu"),
        hull_entries=files,
        spec_dir=str(tmp_path),
    )

    def check():
        docs = maker.run([mgo, mgo], ["MgO", "MgO"], tasks=["PBE", "R2SCAN"])
        shift = {"PBE": 0.0, "R2SCAN": 1.0}
        for doc in docs:
            assert doc.state == "completed", doc.error
            assert doc.hull_size == 3
            assert doc.formation_energy_per_atom == pytest.approx(
                doc.energy_per_atom - shift[doc.model.task], abs=1e-6
            ), doc.model.task
        assert docs[0].key != docs[1].key

    check()
    with pytest.MonkeyPatch.context() as planted:
        one = tmp_path / files["PBE"]
        planted.setattr(StabilityMaker, "entries_path", lambda self, task: one)
        with pytest.raises(AssertionError):
            check()


def test_bad_hull_entries_are_refused_when_planned(tmp_path, capsys):
    """One file for two tasks, a task the run does not have, and a file that
    is not a list of entries are refused by ``sevenomni run`` before any
    relaxation, naming stability.hull_entries, the tasks or the file.
    Planted bug: with the file read only in the hull job (after the
    relaxations), the run stores relaxations and the check fails."""
    (tmp_path / "numbers.json").write_text("[1, 2]")
    _elements_file(tmp_path / "pbe.json", 0.0)
    head = (
        "model: 7net-mf-0\ndevice: cpu\nrelax: {fmax: 0.05, max_steps: 20}\n"
        "properties: [relax, stability]\n"
        "structures: [{bulk: MgO, crystal: rocksalt, a: 4.21}]\n"
    )
    cases = {
        "task: [PBE, R2SCAN]\nstability: {hull_entries: pbe.json}\n": [
            "stability.hull_entries: one file for the tasks PBE, R2SCAN"
        ],
        "task: [PBE, R2SCAN]\nstability: {hull_entries: {PBE: a, HSE: b}}\n": [
            "stability.hull_entries: HSE is not a task of this run"
        ],
        "task: PBE\nstability: {hull_entries: numbers.json}\n": [
            "stability.hull_entries:",
            "numbers.json must hold a list of pymatgen ComputedEntry",
            "found int",
        ],
    }

    def check(body, says):
        spec = tmp_path / "spec.yaml"
        spec.write_text(head + body)
        store = tmp_path / "results"
        assert main(["run", str(spec), "--store", str(store)]) != 0
        captured = capsys.readouterr()
        for text in says:
            assert text in captured.out + captured.err
        assert "submitted" not in captured.out and not (store / "relax").exists()
        if store.exists():
            assert not list(results_store(open_store(store)).query({}))

    for body, says in cases.items():
        check(body, says)
    with pytest.MonkeyPatch.context() as planted:
        planted.setattr(StabilityMaker, "over", lambda self, items: self)
        with pytest.raises(AssertionError):
            check(*list(cases.items())[2])
