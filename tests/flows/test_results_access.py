"""Every result within reach: ``query --fields``, ``export`` and ``open_results``.

One small screening (Cu: relax, QHA, a (100) surface energy, H on Cu(100);
NEB vacancy hops in Cu and Al) fills an embedded store once.  Its numbers
and structures are read back through the command line and the Python call,
and compared with what the store holds, read without them: the results
store's documents as MontyDB returns them, and the bulky fields as
jobflow's own ``JobStore.query(load=True)`` resolves them.
"""

import contextlib
import io
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sevenomni_flows.cli import main
from sevenomni_flows.stores import embedded_job_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = """
model: 7net-0
device: cpu
structures:
  - {bulk: Cu, crystal: fcc, a: 3.62}
properties: [relax, qha, surface_energy, adsorption]
relax: {fmax: 0.05, max_steps: 200}
qha: {linear_strain: [-0.02, 0.02], min_length: 7.0, t_max: 600.0}
surface_energy:
  miller_indices: [[1, 0, 0]]
  slab: {layers: 4, fixed_layers: 0, supercell: [1, 1], vacuum: 10.0}
adsorption:
  miller_indices: [[1, 0, 0]]
  adsorbates: [H]
  slab: {layers: 3, fixed_layers: 1, supercell: [2, 2], vacuum: 10}
  max_steps: 100
neb: {n_images: 3, fmax: 0.1, max_steps: 200, min_length: 5.0}
bands:
  - {kind: vacancy, name: Cu hop, structure: {bulk: Cu, crystal: fcc, a: 3.61}}
  - {kind: vacancy, name: Al hop, structure: {bulk: Al, crystal: fcc, a: 4.04}}
"""


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory, one_torch_thread) -> Path:
    """The results folder of the small screening (all completed)."""
    base = tmp_path_factory.mktemp("screen")
    (base / "spec.yaml").write_text(textwrap.dedent(SPEC))
    status, out, _ = cli("run", base / "spec.yaml", "--store", base / "results")
    assert status == 0, out
    return base / "results"


def stored(store: Path) -> dict[tuple, dict]:
    """The results store's documents by (label, property), read directly."""
    job_store = embedded_job_store(store)
    job_store.connect()
    docs = job_store.additional_stores["results"].query({})
    return {(d["label"], d["property"]): d for d in docs}


def by_key(store: Path, doc: dict) -> dict:
    """Like :func:`loaded_by_jobflow`, but the entry of ``doc``'s key."""
    job_store = embedded_job_store(store)
    job_store.connect()
    out = job_store.query_one({"uuid": doc["job_uuid"]}, load=True)["output"]
    return next(d for d in out if d["key"] == doc["key"])


def test_query_fields_prints_the_stored_arrays(store):
    """``--fields`` on QHA's arrays gives the stored numbers exactly in JSON,
    their units in the table; the NEB images come from the data store, each
    band its own (Al images hold Al)."""
    docs = stored(store)
    qha = docs[("Cu", "qha")]
    status, out, _ = cli(
        "query",
        '{"property": "qha"}',
        "--fields",
        "temperatures,volume,heat_capacity,model.task",
        "--store",
        store,
        "--format",
        "json",
    )
    assert status == 0
    (row,) = json.loads(out)
    assert len(qha["temperatures"]) > 10
    for name in ("temperatures", "volume", "heat_capacity"):
        assert row[name] == qha[name]
    assert row["key"] == qha["key"] and row["model.task"] is None
    status, out, _ = cli(
        "query", '{"property": "qha"}', "--fields", "volume", "--store", store
    )
    assert "volume (Å³/atom)" in out and f"[{len(qha['volume'])} values]" in out
    status, out, _ = cli(
        "query",
        '{"property": "neb"}',
        "--fields",
        "images,barrier",
        "--store",
        store,
        "--format",
        "json",
    )
    rows = {r["label"]: r for r in json.loads(out)}
    for label, element in (("Cu hop", "Cu"), ("Al hop", "Al")):
        doc = docs[(label, "neb")]
        assert "images" not in doc  # bulky: not in the results store
        assert rows[label]["images"] == by_key(store, doc)["images"]
        assert rows[label]["barrier"] == doc["barrier"]
        species = {s["label"] for i in rows[label]["images"] for s in i["sites"]}
        assert species == {element}


def test_bulky_fields_are_each_documents_own(store, monkeypatch):
    """Planted bug: a loader that takes the first document of a batched job's
    output gives the Al hop the Cu images."""
    from sevenomni_flows import open_results
    from sevenomni_flows.reader import Results

    def check():
        with open_results(store) as results:
            for r in results.find({"property": "neb"}):
                elements = {e.symbol for s in r["images"] for e in s.elements}
                assert elements == {r["label"].split()[0]}

    check()

    def first_of_job(self, job_uuid, key, name):
        found = self.job_store.query_one({"uuid": job_uuid}, load=True)
        return found["output"][0][name]

    monkeypatch.setattr(Results, "bulky", first_of_job)
    with pytest.raises(AssertionError):
        check()


def test_unknown_fields_are_named_with_close_matches(store, monkeypatch):
    """A misspelt field exits 2 naming it and what it may have meant (planted
    bug: without the check it prints an empty column and exits 0)."""
    from sevenomni_flows import reader

    def check():
        status, out, err = cli(
            "query", "--fields", "volume,heat_capcity", "--store", store
        )
        assert status == 2 and not out
        assert "unknown field 'heat_capcity'" in err and "heat_capacity" in err
        assert "'volume'" not in err

    check()
    monkeypatch.setattr(reader, "check_fields", lambda names: None)
    with pytest.raises(AssertionError):
        check()


def close(a, b, oriented: bool = True) -> bool:
    """Same species, lattice and positions (to CIF's precision); a CIF keeps
    the cell's lengths and angles, not its orientation."""
    if [str(s.specie) for s in a] != [str(s.specie) for s in b]:
        return False
    if not oriented:
        shift = a.frac_coords - b.frac_coords
        return (
            np.allclose(a.lattice.abc, b.lattice.abc, atol=1e-5)
            and np.allclose(a.lattice.angles, b.lattice.angles, atol=1e-4)
            and np.allclose(shift - np.round(shift), 0, atol=1e-5)
        )
    return np.allclose(a.lattice.matrix, b.lattice.matrix, atol=1e-5) and np.allclose(
        a.cart_coords, b.cart_coords, atol=1e-4
    )


def test_export_writes_the_stored_structures_with_their_key(store, tmp_path):
    """The relaxed Cu cell in every format, read back with ASE and pymatgen,
    equals the stored one and names its key; lists (NEB images, adsorbate
    placements, relaxed slabs) are one extxyz file each, in order."""
    import ase.io
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    docs = stored(store)
    relax = docs[("Cu", "relax")]
    relaxed = Structure.from_dict(relax["structure"])
    key = relax["key"]
    for fmt, suffix in (("extxyz", "extxyz"), ("cif", "cif"), ("poscar", "vasp")):
        status, out, _ = cli(
            "export",
            '{"property": "relax"}',
            "--to",
            tmp_path / fmt,
            "--format",
            fmt,
            "--store",
            store,
        )
        assert status == 0 and "2 files of 1 results" in out
        path = tmp_path / fmt / f"Cu_relax_structure.{suffix}"
        assert key in path.read_text()
        by_ase = AseAtomsAdaptor.get_structure(ase.io.read(path))
        assert close(by_ase, relaxed, oriented=fmt != "cif"), fmt
        if fmt != "extxyz":  # pymatgen reads no extxyz
            by_pymatgen = Structure.from_file(path)
            assert close(by_pymatgen, relaxed, oriented=fmt != "cif"), fmt
    assert ase.io.read(tmp_path / "extxyz/Cu_relax_structure.extxyz").info["key"] == key
    cli("export", "{}", "--to", tmp_path / "json", "--format", "json", "--store", store)
    data = json.loads((tmp_path / "json/Cu_relax_structure.json").read_text())
    assert data["key"] == key
    assert close(Structure.from_dict(data["structure"]), relaxed)

    cli("export", "--to", tmp_path / "all", "--store", store)
    neb = docs[("Al hop", "neb")]
    frames = ase.io.read(tmp_path / "all/Al_hop_neb_images.extxyz", index=":")
    images = [Structure.from_dict(s) for s in by_key(store, neb)["images"]]
    assert len(frames) == len(images) == 5
    for i, (atoms, image) in enumerate(zip(frames, images, strict=True)):
        assert atoms.info["key"] == neb["key"] and atoms.info["index"] == i
        assert close(AseAtomsAdaptor.get_structure(atoms), image)
    surface = docs[("Cu", "surface_energy")]
    slabs = ase.io.read(
        tmp_path / "all/Cu_surface_energy_relaxed_slabs.extxyz", index=":"
    )
    assert [len(a) for a in slabs] == [row["n_atoms"] for row in surface["slabs"]]
    placements = ase.io.read(
        tmp_path / "all/Cu_adsorption_relaxed_structures.extxyz", index=":"
    )
    assert len(placements) == docs[("Cu", "adsorption")]["n_candidates"]
    assert all(a.get_chemical_symbols().count("H") == 1 for a in placements)
    names = [p.name for p in (tmp_path / "all").iterdir()]
    assert all(re.fullmatch(r"[\w.+=-]+", n) for n in names)


def test_export_keeps_apart_results_of_one_label(store, tmp_path, monkeypatch):
    """Two documents of one label and property (other settings) get two files,
    told apart by their keys (planted bug: names by label and property only
    overwrite one with the other)."""
    from sevenomni_flows import export, open_results

    with open_results(store) as results:
        (first,) = results.find({"property": "relax"})
        other = dict(first, key="f" * 16)
        two = [first, type(first)(other, results)]

        def check(folder):
            paths = export.export_structures(two, folder, "json")
            keys = {json.loads(p.read_text())["key"] for p in set(paths)}
            assert keys == {first.key, "f" * 16}

        check(tmp_path / "a")
        monkeypatch.setattr(export, "Counter", lambda bases: dict.fromkeys(bases, 1))
        with pytest.raises(AssertionError):
            check(tmp_path / "b")


def test_a_filter_selecting_nothing_writes_nothing(store, tmp_path):
    """As ``query`` does: a message naming the filter and the store, exit 0."""
    status, out, _ = cli(
        "export", '{"formula": "Xx"}', "--to", tmp_path / "none", "--store", store
    )
    assert status == 0 and "no results match" in out and "Xx" in out
    assert not (tmp_path / "none").exists()
    status, _, err = cli("export", "{bad", "--to", tmp_path, "--store", store)
    assert status == 2 and "not valid JSON/YAML" in err


def test_python_call_reads_folder_and_store_file_alike(store, tmp_path):
    """``open_results`` on the folder and on a jobflow store file naming the
    same database: the same summary numbers, arrays and lazily loaded
    structures as the store holds."""
    from pymatgen.core import Structure

    from sevenomni_flows import open_results
    from sevenomni_flows.properties.neb import NebDocument

    store_file = tmp_path / "jobstore.yaml"
    stores = {
        name: dict(
            type="MontyStore",
            database_path=str(store.resolve()),
            database_name="sevenomni",
            collection_name=collection,
            **({"key": "key"} if name == "results" else {}),
        )
        for name, collection in (
            ("docs", "outputs"),
            ("data", "outputs_data"),
            ("results", "results"),
        )
    }
    store_file.write_text(
        json.dumps(
            {
                "docs_store": stores["docs"],
                "additional_stores": {k: stores[k] for k in ("data", "results")},
            }
        )
    )
    docs = stored(store)
    qha = docs[("Cu", "qha")]
    for where in (store, store_file):
        with open_results(where) as results:
            (r,) = results.find({"property": "qha"}, fields=["volume"])
            assert r["volume"] == qha["volume"] and r.key == qha["key"]
            assert "heat_capacity" not in r  # not asked for
            (neb,) = results.find({"label": "Cu hop"})
            images = neb["images"]
            assert all(isinstance(s, Structure) for s in images)
            expected = by_key(store, docs[("Cu hop", "neb")])["images"]
            assert len(images) == len(expected) == 5
            for image, d in zip(images, expected, strict=True):
                assert close(image, Structure.from_dict(d), oriented=True)
            assert isinstance(neb.document(), NebDocument)
            relaxed = next(iter(results.find({"property": "relax"})))
            assert relaxed.structures()["structure"][0] == Structure.from_dict(
                docs[("Cu", "relax")]["structure"]
            )
    with pytest.raises(FileNotFoundError, match="no results store at"):
        open_results(tmp_path / "nowhere")


def test_the_documented_python_call_runs(store, monkeypatch, capsys):
    """The ``open_results`` example of docs/screening.md, run in the folder
    holding ``results``: it prints QHA's and the NEB's stored numbers."""
    page = Path(__file__).parents[2] / "docs" / "screening.md"
    (code,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
        if "open_results" in block
    ]
    monkeypatch.chdir(store.parent)
    exec(compile(textwrap.dedent(code), str(page), "exec"), {})
    out = capsys.readouterr().out
    docs = stored(store)
    assert f"{docs[('Cu hop', 'neb')]['barrier']:.3f}" in out
    assert f"{docs[('Cu', 'qha')]['heat_capacity'][-1]:.2f}" in out


def test_python_call_reads_a_mongodb_uri(store, monkeypatch):
    """The same documents copied into MongoDB (mongomock, bulky fields in
    GridFS as ``sevenomni run --store mongodb://`` keeps them) read back
    through the URI: the NEB images of each band are its own."""
    import maggma.stores.gridfs
    import maggma.stores.mongolike
    from pymatgen.core import Structure

    mongomock_ng = pytest.importorskip("mongomock_ng")
    gridfs = pytest.importorskip("mongomock_ng.gridfs")
    from mongomock_ng.store import ServerStore

    from sevenomni_flows import open_results
    from sevenomni_flows.schemas import bulky_fields
    from sevenomni_flows.stores import mongo_job_store

    server = ServerStore()

    class Client(mongomock_ng.MongoClient):
        def close(self):
            """mongomock_ng's close() empties the server for all clients."""

    gridfs.enable_gridfs_integration()
    for module in (maggma.stores.mongolike, maggma.stores.gridfs):
        monkeypatch.setattr(
            module, "MongoClient", lambda *a, **k: Client(*a, _store=server, **k)
        )
    source = embedded_job_store(store)
    source.connect()
    target = mongo_job_store("mongodb://localhost")
    target.connect()
    for doc in source.query({}, load=True):
        doc.pop("_id")
        target.update(doc, save={"data": list(bulky_fields())})
    docs = [
        {k: v for k, v in d.items() if k != "_id"}
        for d in source.additional_stores["results"].query({})
    ]
    target.additional_stores["results"].update(docs, key="key")
    embedded = {(d["label"], d["property"]): d for d in docs}
    with open_results("mongodb://localhost") as results:
        found = list(results.find({"property": "neb"}))
        assert len(found) == 2
        for r in found:
            expected = by_key(store, embedded[(r["label"], "neb")])["images"]
            for image, d in zip(r["images"], expected, strict=True):
                assert close(image, Structure.from_dict(d))


def test_bulky_fields_of_a_selection_are_read_in_one_query(store, monkeypatch):
    """Reading both bands' images makes one data-store query, not one per
    result: the embedded store has no index and decodes every blob per
    query (100 results of 5 images: 1.3 s batched, 54 s one by one).
    Planted bug: a fetch of each result's own blob only makes two."""
    from maggma.stores import MontyStore

    from sevenomni_flows import open_results

    calls = []
    real = MontyStore.query

    def counted(self, criteria=None, *args, **kwargs):
        if self.collection_name == "outputs_data":
            calls.append(criteria)
        return real(self, criteria, *args, **kwargs)

    monkeypatch.setattr(MontyStore, "query", counted)

    def queries(planted: bool) -> int:
        calls.clear()
        with open_results(store) as results:
            found = list(results.find({"property": "neb"}))
            if planted:
                monkeypatch.setattr(results, "_selected", set())
            assert [len(r["images"]) for r in found] == [5, 5]
        return len(calls)

    assert queries(planted=False) == 1
    with pytest.raises(AssertionError):
        assert queries(planted=True) == 1
