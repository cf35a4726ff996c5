"""Screening you can trust: one current document per planned calculation.

One test per defect class that once gave a wrong success or a wrong reuse:
jobs that raised left no document, reuse ignored dtype and the relaxation a
property was computed on, inputs were dropped, reruns piled up documents,
inner relaxations were never checked, and the spec let bad shapes through.
"""

import json
import textwrap
import time

import pytest
from ase.build import bulk, molecule
from ase.io import write
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter

from sevenomni_flows import ElasticMaker, EosMaker, ModelSettings, embedded_job_store
from sevenomni_flows.cli import main
from sevenomni_flows.spec import SpecError, load_spec
from sevenomni_flows.stores.results import Publisher, results_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEAD = """
model: 7net-0
device: cpu
relax: {fmax: 0.05, max_steps: 200}
"""


def write_spec(folder, body: str, name="spec.yaml"):
    path = folder / name
    path.write_text(textwrap.dedent(HEAD + body))
    return path


def run(spec, store, capsys):
    capsys.readouterr()
    status = main(["run", str(spec), "--store", str(store)])
    return status, capsys.readouterr().out


def query(store, capsys, text="{}"):
    capsys.readouterr()
    assert main(["query", text, "--store", str(store), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def all_results(store) -> list[dict]:
    """Every document of the results store (not only the current view)."""
    job_store = embedded_job_store(store)
    job_store.connect()
    return list(results_store(job_store).query({}))


def reused(out: str) -> int:
    return int(out.split(" results reused")[0].rsplit(" ", 1)[1])


def test_unconverged_upstream_gives_skipped_documents_and_exit_1(tmp_path, capsys):
    """relax max_steps 1, then static: static is stored as skipped, and run exits 1."""
    spec = write_spec(
        tmp_path,
        """
relax: {fmax: 0.001, max_steps: 1}
structures:
  - {bulk: Cu, crystal: fcc, a: 3.70}
  - {bulk: Al, crystal: fcc, a: 4.20}
properties: [relax, static]
""",
    )
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 1
    rows = query(tmp_path / "r", capsys)
    assert len(rows) == 4  # every planned calculation has its document
    static = [r for r in rows if r["property"] == "static"]
    assert {r["state"] for r in static} == {"skipped"}
    assert all("did not converge within 1 steps" in r["error"] for r in static)
    assert "2 completed, 0 failed, 2 skipped, 0 missing" in out
    assert "2 relaxations unconverged" in out


def test_a_job_that_raises_stores_failed_documents(tmp_path, capsys, monkeypatch):
    """An exception inside a job becomes a failed document with its type."""
    from sevenomni_flows.properties.relax import StaticMaker

    def boom(self, items, targets, ctx):
        raise MemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(StaticMaker, "compute", boom)
    spec = write_spec(
        tmp_path,
        """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
properties: [relax, static]
""",
    )
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 1 and "1 failed" in out
    [static] = query(tmp_path / "r", capsys, '{"property": "static"}')
    assert static["state"] == "failed" and static["error_type"] == "MemoryError"
    assert "out of memory" in static["error"]
    monkeypatch.undo()
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 0 and reused(out) == 1
    [static] = query(tmp_path / "r", capsys, '{"property": "static"}')
    assert static["state"] == "completed"
    assert len(all_results(tmp_path / "r")) == 2  # replaced, not piled up


def test_reuse_key_holds_dtype_and_the_relaxation(tmp_path, capsys):
    """float64 does not reuse float32; a new relax.fmax recomputes the properties."""
    body = """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.70}
properties: [relax, static]
"""
    spec = write_spec(tmp_path, body)
    store = tmp_path / "r"
    run(spec, store, capsys)
    status, out = run(spec, store, capsys)
    assert reused(out) == 2
    spec64 = write_spec(tmp_path, "dtype: float64\n" + body, "spec64.yaml")
    status, out = run(spec64, store, capsys)
    assert status == 0 and reused(out) == 0
    rows = query(store, capsys)
    assert {r["model"]["dtype"] for r in rows} == {"float32", "float64"}
    assert {r["protocol"]["dtype"] for r in rows} == {"float32", "float64"}
    tighter = write_spec(
        tmp_path,
        body.replace("properties", "relax: {fmax: 0.001}\nproperties"),
        "t.yaml",
    )
    status, out = run(tighter, store, capsys)
    assert reused(out) == 0 and "(1 structures to relax)" in out
    job_store = embedded_job_store(store)
    job_store.connect()
    for relax in results_store(job_store).query({"property": "relax"}):
        [static] = results_store(job_store).query(
            {"property": "static", "protocol.on": relax["key"]}
        )
        # the static was computed on exactly this relaxation's structure
        assert Structure.from_dict(static["input_structure"]) == Structure.from_dict(
            relax["structure"]
        )


def test_every_frame_and_format_is_read(tmp_path, capsys):
    """Multi-frame extxyz, pymatgen JSON, a disordered CIF and a molecule."""
    frames = [bulk("Cu", "fcc", a=a) for a in (3.55, 3.61, 3.67)]
    write(tmp_path / "many.extxyz", frames)
    al = AseAtomsAdaptor.get_structure(bulk("Al", "fcc", a=4.05))
    (tmp_path / "al.json").write_text(json.dumps(al.as_dict()))
    disordered = Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    CifWriter(disordered).write_file(tmp_path / "alloy.cif")
    write(tmp_path / "water.xyz", molecule("H2O"))
    spec = write_spec(
        tmp_path,
        """
structures:
  - file: many.extxyz
  - file: al.json
  - file: alloy.cif
  - file: water.xyz
properties: [relax, static]
""",
    )
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 1
    rows = query(tmp_path / "r", capsys)
    done = {r["label"] for r in rows if r["state"] == "completed"}
    assert done == {"many.extxyz[0]", "many.extxyz[1]", "many.extxyz[2]", "al.json"}
    relax = [r for r in rows if r["property"] == "relax"]
    assert len({r["structure_id"] for r in relax}) == 4  # each frame its own input
    assert all(-4.2 < r["energy_per_atom"] < -3.5 for r in relax)
    failed = {r["label"]: r["error"] for r in rows if r["state"] == "failed"}
    assert (
        "partial occupancy" in failed["alloy.cif"] and "Cu:0.5" in failed["alloy.cif"]
    )
    assert "periodic" in failed["water.xyz"]
    assert "2 failed" in out  # the two bad inputs, each one document


def test_rerun_of_failures_does_not_pile_up(tmp_path, capsys):
    """Rerunning failures replaces their documents; query shows one per key."""
    (tmp_path / "garbage.cif").write_text("not a cif\n")
    spec = write_spec(
        tmp_path,
        """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {bulk: Og, crystal: fcc, a: 4.0}
  - file: garbage.cif
properties: [relax, static]
""",
    )
    store = tmp_path / "r"
    counts = []
    for _ in range(3):
        status, out = run(spec, store, capsys)
        assert status == 1
        counts.append(len(all_results(store)))
    assert counts == [5, 5, 5]  # Cu 2, Og 2 (failed, skipped), garbage 1
    assert reused(out) == 2


def test_killed_batched_relaxation_keeps_finished_structures(
    tmp_path, capsys, monkeypatch
):
    """Interrupted after 3 of 6 relaxations: a rerun relaxes only the other 3."""
    import sevenomni_core.batch as relax_module  # where the Maker finds relax

    monkeypatch.setattr(Publisher, "INTERVAL", 0.0)  # write each as it finishes
    real = relax_module.relax
    finished = []

    def relax_then_die(*args, on_result=None, **kwargs):
        def hook(i, result):
            on_result(i, result)
            finished.append(i)
            if len(finished) == 3:
                raise KeyboardInterrupt  # like the process being killed

        return real(*args, on_result=hook, **kwargs)

    monkeypatch.setattr(relax_module, "relax", relax_then_die)
    spec = write_spec(
        tmp_path,
        "structures:\n"
        + "".join(
            f"  - {{bulk: Cu, crystal: fcc, a: {a}}}\n"
            for a in (3.50, 3.55, 3.60, 3.65, 3.70, 3.75)
        )
        + "properties: [relax, static]\n",
    )
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "r", capsys)
    monkeypatch.setattr(relax_module, "relax", real)
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 0
    assert reused(out) == 3 and "(3 structures to relax)" in out
    assert len(query(tmp_path / "r", capsys)) == 12


def test_inner_relaxations_are_checked():
    """Unconverged strained or scaled cells fail the property, saying so."""
    settings = ModelSettings(model="7net-0", device="cpu")
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    si = AseAtomsAdaptor.get_structure(atoms)
    [el] = ElasticMaker(settings=settings, relax={"fmax": 1e-4, "max_steps": 2}).run(si)
    assert el.state == "failed" and el.elastic_tensor is None
    assert "strained cells did not converge within 2 steps" in el.error
    assert el.max_steps_reached == 25  # 6 x 4 strained cells and the unstrained one
    [eos] = EosMaker(settings=settings, relax={"fmax": 1e-4, "max_steps": 2}).run(si)
    assert eos.state == "failed" and eos.b0 is None
    assert "scaled cells did not converge" in eos.error
    [ok] = ElasticMaker(
        settings=settings,
        strain_magnitudes=[-0.01, 0.01],
        relax={"fmax": 0.05, "max_steps": 300},
    ).run(si)
    assert ok.state == "completed" and ok.max_steps_reached == 0
    assert len(ok.stresses) == 12 and len(ok.strains) == 12


@pytest.mark.parametrize(
    ("section", "why"),
    [
        ("adsorption: {miller_indices: [[1, 1]]}", "three integers"),
        ("adsorption: {miller_indices: [[0, 0, 0]]}", "not a surface"),
        ("adsorption: {adsorbates: [CO, co]}", "repeats"),
        ("adsorption: {adsorbates: [Xx]}", "unknown adsorbate"),
        ("phonon: {supercell: [[2, 0], [0, 2]]}", "3x3"),
        ("phonon: {supercell: [[1, 0, 0], [0, 1, 0], [0, 0, 0]]}", "determinant"),
        ("elastic: {strain_magnitudes: [0.0, 0.0]}", "non-zero"),
        ("eos: {linear_strains: [0.01, 0.01, 0.02]}", "4 distinct"),
        ("relax: {fmax: -1}", "must be > 0"),
        ("elastic: {relax: {max_steps: 0}}", r"elastic\.relax\.max_steps: .*to 1"),
        ("relax: {optimizer: adam}", "unknown optimizer 'adam'"),
        ("mof: {relax: {optimizer: sgd}}", r"mof\.relax\.optimizer: .*'fire'"),
        ("frameworks: [{file: x.cif, guests: [CO2, co2]}]", "repeats"),
    ],
)
def test_spec_shapes_and_values_are_validated(tmp_path, section, why):
    """Bad shapes and values are spec errors naming the key and line."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"model: 7net-0\n{section}\n")
    with pytest.raises(SpecError, match=why) as err:
        load_spec(spec)
    assert "spec.yaml:2" in str(err.value)


def test_spec_sections_are_the_makers_fields():
    """Defaults come from the Makers; every result-changing field is settable."""
    from dataclasses import fields

    from sevenomni_flows.properties import ElasticMaker, RelaxMaker
    from sevenomni_flows.spec import RunSpec

    spec = RunSpec()
    assert spec.relax.fmax == RelaxMaker().fmax
    assert spec.elastic.relax == ElasticMaker().relax
    for name, maker in (("relax", RelaxMaker), ("elastic", ElasticMaker)):
        settable = set(type(getattr(spec, name)).model_fields)
        assert settable == {f.name for f in fields(maker)} - {"name", "settings"}


def test_summary_has_one_table_per_property(tmp_path, capsys):
    """Each property's table has its own columns and the resolved model."""
    spec = write_spec(
        tmp_path,
        """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
properties: [relax, static]
""",
    )
    _, out = run(spec, tmp_path / "r", capsys)
    tables = out.split("\n\n")
    title = "1 results (7net-0, float32)"
    relax = next(t for t in tables if t.startswith(f"relax: {title}"))
    static = next(t for t in tables if t.startswith(f"static: {title}"))
    assert "volume_per_atom" in relax and "volume_per_atom" not in static
    assert "b0" not in relax and "free_energy_300k" not in relax


def test_plan_makes_few_jobs_for_many_materials(tmp_path):
    """Jobs scale with chunks, not materials: no job per material."""
    from sevenomni_flows.run import open_store, plan

    body = "structures:\n" + "".join(
        f"  - {{bulk: Cu, crystal: fcc, a: {3.5 + 0.01 * i:.2f}}}\n" for i in range(40)
    )
    spec_path = write_spec(
        tmp_path,
        body + "properties: [relax, static, eos]\ncluster: {structures_per_job: 16}\n",
    )
    spec, base = load_spec(spec_path)
    settings = ModelSettings(spec.model, spec.task, spec.device, spec.dtype)
    run_ = plan(spec, base, open_store(tmp_path / "r"), settings, str(tmp_path))
    assert len(run_.planned) == 120
    assert run_.n_jobs == 9  # 3 chunks x (relax, static, eos)


def test_progress_lines_and_plot_titles(tmp_path, monkeypatch):
    """Long jobs log rate, ETA and failures; plots name the resolved model."""
    import logging

    import matplotlib.axes

    from sevenomni_flows.properties.relax import Progress

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("sevenomni.progress")
    # setLevel, not a bare attribute: it clears the logger's level cache;
    # other tests' logging.config calls may have disabled existing loggers.
    monkeypatch.setattr(logger, "disabled", False)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        progress = Progress("relax", 4, interval=0.0)
        progress.step(4)  # nothing finished yet: a line all the same
        quiet = lines[-1]
        for _ in range(9):
            progress.step(4)
        progress.tick(steps=10)
        progress.tick(failed=True, steps=10)
        # 40 structure-steps done, 10 steps per structure: 20 steps left
        progress.start -= 10.0 - (time.monotonic() - progress.start)
        assert progress.eta() == pytest.approx(5.0, rel=0.01)
        progress.tick(flag=True, steps=10)
        progress.tick(steps=10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert lines[0] == "relax: 4 structures started"
    assert quiet.startswith("relax: 0/4 done, 0 failed, 0 unconverged, 4 relaxing")
    assert quiet.endswith("ETA -")
    assert lines[-1].startswith("relax: 4/4 done, 1 failed, 1 unconverged, 0 relax")
    assert "/s, ETA 0 s" in lines[-1]
    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "set_title",
        lambda self, text, *a, **k: titles.append(text) or real(self, text, *a, **k),
    )
    settings = ModelSettings(model="7net-mf-0", device="cpu")
    cu = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.61))
    [eos] = EosMaker(
        settings=settings, plot_dir=str(tmp_path), relax={"fmax": 0.05}
    ).run(cu, "Cu.cif")
    assert eos.state == "completed" and eos.plots
    assert "Cu.cif: equation of state, 7net-mf-0, task PBE" in titles


def test_dispersion_is_provenance_and_part_of_the_key(tmp_path, capsys):
    """dispersion: d3bj is not reused from a run without it; energies add D3."""
    from sevenomni_core.dispersion import evaluate_d3

    body = """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
properties: [relax, static]
"""
    store = tmp_path / "r"
    run(write_spec(tmp_path, body), store, capsys)
    status, out = run(
        write_spec(tmp_path, "dispersion: d3bj\n" + body, "d3.yaml"), store, capsys
    )
    assert status == 0 and reused(out) == 0 and "dispersion d3bj" in out
    static = {
        (r["model"]["dispersion"] or "none"): r
        for r in query(store, capsys, '{"property": "static"}')
    }
    assert set(static) == {"none", "d3bj"}
    d3 = static["d3bj"]
    assert d3["protocol"]["dispersion"]["functional"] == "pbe"
    job_store = embedded_job_store(store)
    job_store.connect()
    [doc] = results_store(job_store).query({"key": d3["key"]})
    atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(doc["input_structure"]))
    [term] = evaluate_d3([atoms], "d3bj", functional="pbe")
    from sevenomni_core import SevenOmniCalculator

    atoms.calc = SevenOmniCalculator("7net-0", device="cpu")
    expected = (atoms.get_potential_energy() + float(term.energy[0])) / len(atoms)
    assert d3["energy_per_atom"] == pytest.approx(expected, abs=5e-5)  # float32


def test_embedded_results_upsert_keeps_one_document_per_key(tmp_path):
    """New keys are inserted, repeated keys replaced (also within one burst),
    by publishers that know the store's keys and by fresh ones."""
    from sevenomni_flows.run import open_store

    store = results_store(open_store(tmp_path / "r"))
    store.connect()
    first = Publisher(store, "job-1", interval=0)
    first.add([{"key": "a", "state": "failed"}, {"key": "b", "state": "failed"}])
    first.add([{"key": "a", "state": "completed"}, {"key": "c", "state": "failed"}])
    second = Publisher(store, "job-2", interval=0)  # reads the stored keys once
    second.add([{"key": "b", "state": "skipped"}, {"key": "b", "state": "completed"}])
    docs = {d["key"]: d for d in store.query({})}
    assert store.count() == 3
    assert {k: d["state"] for k, d in docs.items()} == {
        "a": "completed",
        "b": "completed",
        "c": "failed",
    }
    assert docs["b"]["job_uuid"] == "job-2" and docs["a"]["job_uuid"] == "job-1"


MD_SPEC = """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
properties: [relax, md]
md: {temperatures: TEMPS, steps: 10, interval: 5, min_length: 5.0}
"""


def test_md_rerun_after_a_failure_recomputes_only_the_failed_run(tmp_path, capsys):
    """A run that blows up is stored failed and the exit code is 1; a rerun
    recomputes only it (one document per run, never two); a fixed setting
    then completes it beside the reused ones."""
    spec = write_spec(tmp_path, MD_SPEC.replace("TEMPS", "[300, 1.0e6]"))
    store = tmp_path / "r"
    status, out = run(spec, store, capsys)
    assert status == 1 and "2 completed, 1 failed" in out
    [hot] = [r for r in query(store, capsys) if r.get("temperature") == 1e6]
    assert hot["state"] == "failed" and "blew up at step" in hot["error"]
    status, out = run(spec, store, capsys)
    assert status == 1 and reused(out) == 2 and "1 failed" in out
    assert len(all_results(store)) == 3
    spec.write_text(spec.read_text().replace("1.0e6", "600"))
    status, out = run(spec, store, capsys)
    assert status == 0 and reused(out) == 2 and "3 completed, 0 failed" in out
    rows = query(store, capsys, '{"property": "md"}')
    states = sorted((r["temperature"], r["state"]) for r in rows)
    assert states == [(300, "completed"), (600, "completed"), (1e6, "failed")]
    assert len(all_results(store)) == 4  # the failed 10^6 K run is kept


def test_killed_md_job_keeps_the_relaxation(tmp_path, capsys, monkeypatch):
    """Killed while the trajectories are half written: the relaxation stays
    stored, no MD document claims success, and the rerun recomputes the MD
    runs only, overwriting the partial trajectory files."""
    import sevenomni_core.batch as md_module  # where the Maker finds md

    real = md_module.md

    def md_then_die(*args, **kwargs):
        real(*args, **{**kwargs, "steps": 5})  # half the frames on disk
        raise KeyboardInterrupt  # like the process being killed

    monkeypatch.setattr(md_module, "md", md_then_die)
    spec = write_spec(tmp_path, MD_SPEC.replace("TEMPS", "[300, 600]"))
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "r", capsys)
    assert [r["property"] for r in all_results(tmp_path / "r")] == ["relax"]
    monkeypatch.setattr(md_module, "md", real)
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 0 and reused(out) == 1 and "3 completed, 0 failed" in out
    from ase.io import read

    rows = [r for r in all_results(tmp_path / "r") if r["property"] == "md"]
    assert len(rows) == 2
    for row in rows:
        assert len(read(row["trajectory"], ":")) == 3  # steps 0, 5, 10


def test_killed_neb_job_then_rerun_computes_every_band(tmp_path, capsys, monkeypatch):
    """Killed during the batched NEB: nothing is stored as done; the rerun
    computes each band once and a third run reuses them."""
    import sevenomni_core.batch as neb_module  # where the Maker finds neb

    real = neb_module.neb

    def neb_then_die(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(neb_module, "neb", neb_then_die)
    spec = write_spec(
        tmp_path,
        """
structures: []
neb: {n_images: 3, fmax: 0.1, max_steps: 200, min_length: 5.0}
bands:
  - {kind: vacancy, name: Cu hop, structure: {bulk: Cu, crystal: fcc, a: 3.61}}
  - {kind: vacancy, name: Al hop, structure: {bulk: Al, crystal: fcc, a: 4.04}}
""",
    )
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "r", capsys)
    assert all_results(tmp_path / "r") == []
    monkeypatch.setattr(neb_module, "neb", real)
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 0 and "2 completed, 0 failed" in out
    status, out = run(spec, tmp_path / "r", capsys)
    assert status == 0 and reused(out) == 2
    rows = query(tmp_path / "r", capsys)
    assert sorted(r["label"] for r in rows) == ["Al hop", "Cu hop"]
    assert all(r["converged"] and r["barrier"] > 0.1 for r in rows)


#: A calculation's own RuntimeError (deterministic) and CUDA's out of memory,
#: which torch raises as a RuntimeError too (transient): told apart by message.
RAISED = {
    "Cu": RuntimeError("displaced supercell 3 failed: forces are not finite"),
    "Al": RuntimeError("CUDA error: out of memory"),
}


def check_rerun_keeps_only_deterministic(tmp_path, capsys, monkeypatch):
    """Cu's plain RuntimeError is kept by a rerun, Al's CUDA OOM retried."""
    from sevenomni_flows.properties.relax import StaticMaker

    def raises(self, items, targets, ctx):
        return [RAISED[item.formula] for item in items]

    tmp_path.mkdir()
    spec = write_spec(
        tmp_path,
        """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.61}
  - {bulk: Al, crystal: fcc, a: 4.05}
properties: [relax, static]
""",
    )
    store = tmp_path / "r"
    with monkeypatch.context() as m:
        m.setattr(StaticMaker, "compute", raises)
        assert run(spec, store, capsys)[0] == 1
    stored = [d for d in all_results(store) if d["property"] == "static"]
    assert {d["formula"]: d["transient"] for d in stored} == {"Cu": False, "Al": True}
    status, out = run(spec, store, capsys)
    assert status == 1 and "1 failures kept" in out
    rows = query(store, capsys, '{"property": "static"}')
    assert {r["formula"]: r["state"] for r in rows} == {
        "Cu": "failed",
        "Al": "completed",
    }


def test_rerun_retries_machine_failures_only(tmp_path, capsys, monkeypatch):
    """Only the machine's failures are retried by a plain rerun; planted bug:
    with RuntimeError back among the transient errors, Cu's deterministic
    failure is retried too and the check fails."""
    from sevenomni_flows.schemas import documents

    check_rerun_keeps_only_deterministic(tmp_path / "a", capsys, monkeypatch)
    planted = documents.TRANSIENT_ERRORS | {"RuntimeError"}
    monkeypatch.setattr(documents, "TRANSIENT_ERRORS", planted)
    with pytest.raises(AssertionError):
        check_rerun_keeps_only_deterministic(tmp_path / "b", capsys, monkeypatch)


def test_a_revised_method_recomputes_and_keeps_the_old_document(
    tmp_path, capsys, monkeypatch
):
    """A fix that changes a property's numbers at unchanged settings raises its
    Maker's ``revision``: the rerun recomputes instead of serving the earlier
    method's document, and that document stays in the store.  Unrevised
    properties keep their keys (no ``revision`` in their settings)."""
    from sevenomni_flows.jobs import registry
    from sevenomni_flows.properties import StaticMaker, SurfaceEnergyMaker

    body = """
structures:
  - {bulk: Cu, crystal: fcc, a: 3.70}
properties: [relax, static]
"""
    spec = write_spec(tmp_path, body)
    store = tmp_path / "r"
    run(spec, store, capsys)
    [before] = [r for r in query(store, capsys) if r["property"] == "static"]
    assert "revision" not in before["protocol"]["settings"]
    monkeypatch.setattr(StaticMaker, "revision", 1)
    status, out = run(spec, store, capsys)
    assert status == 0 and reused(out) == 1  # the relaxation only
    [after] = [
        r
        for r in query(store, capsys)
        if r["property"] == "static" and r["key"] != before["key"]
    ]
    assert after["protocol"]["settings"]["revision"] == 1
    keys = {d["key"] for d in all_results(store) if d["property"] == "static"}
    assert keys == {before["key"], after["key"]}  # the old one is kept
    # the methods fixed by "same crystal, same answer" are revised
    revised = {n for n, cls in registry.makers().items() if cls.revision}
    assert {"qha", "phonon", "surface_energy", "widom", "vacancy"} <= revised, revised
    assert SurfaceEnergyMaker.revision >= 1
