"""``task: [PBE, R2SCAN]``: every calculation at each task, one document per
task, each equal to a single-task run; the cross-task table; refusal by a
single-task model."""

import json
import textwrap

import numpy as np
import pytest

from sevenomni_flows import open_results
from sevenomni_flows.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BODY = """
model: 7net-mf-0
device: cpu
dtype: float64
relax: {fmax: 0.05, max_steps: 200}
properties: [relax, stability, eos, elastic]
eos: {linear_strains: [-0.02, -0.01, 0.0, 0.01, 0.02], relax: {fmax: 0.05}}
elastic: {strain_magnitudes: [-0.01, 0.01], relax: {fmax: 0.05}}
structures:
  - {bulk: MgO, crystal: rocksalt, a: 4.21}
  - {bulk: CaO, crystal: rocksalt, a: 4.81}
  - {bulk: MgO, crystal: cesiumchloride, a: 2.6, name: MgO (CsCl)}
"""


def _run(folder, capsys, task):
    spec = folder / "spec.yaml"
    spec.write_text(textwrap.dedent(BODY) + f"task: {task}\n")
    status = main(["run", str(spec), "--store", str(folder / "results")])
    out = capsys.readouterr()
    return status, out.out + out.err


def _docs(folder, capsys, query="{}"):
    store = str(folder / "results")
    assert main(["query", query, "--store", store, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _values(docs):
    """(label, property, task) -> the summary's measured values."""
    keep = (
        "energy_per_atom",
        "formation_energy_per_atom",
        "e_above_hull",
        "v0",
        "bulk_modulus_vrh",
    )
    return {
        (d["label"], d["property"], d["model"]["task"]): {
            k: d[k] for k in keep if d.get(k) is not None
        }
        for d in docs
    }


def _eos_energies(folder):
    """(label, task) -> the energies an EOS was fitted to."""
    with open_results(folder / "results") as results:
        return {
            (r["label"], r["model"]["task"]): list(r["energies"])
            for r in results.find({"property": "eos"})
        }


def test_two_tasks_equal_two_single_task_runs(tmp_path, capsys):
    """A run at [PBE, R2SCAN] evaluates both tasks in shared batches and
    stores two documents per calculation, each with its own task and key,
    equal (float64) to a run at that task alone; the run ends with the
    cross-task table; query filters by model.task; no plot is overwritten;
    a rerun at one of the two tasks reuses everything."""
    both = tmp_path / "both"
    both.mkdir()
    status, out = _run(both, capsys, "[PBE, R2SCAN]")
    assert status == 0, out
    # one job per property over both tasks: relaxation (3 materials + 3
    # references, twice), hull, EOS and elastic
    assert "in 4 jobs" in out and "relax: 12 structures started" in out
    assert "stability by task (PBE, R2SCAN; Δ: R2SCAN − PBE)" in out
    assert "Δformation_energy_per_atom (eV/atom)" in out
    docs = _docs(both, capsys)
    # 3 materials + 3 references relaxed, 3 each of stability, EOS and
    # elastic: at each task
    assert len(docs) == 2 * (6 + 3 + 3 + 3)
    pairs = {}
    for d in docs:
        pairs.setdefault((d["label"], d["property"]), []).append(d)
    assert all(len(p) == 2 for p in pairs.values())
    for p in pairs.values():
        assert {d["model"]["task"] for d in p} == {"PBE", "R2SCAN"}
        assert p[0]["key"] != p[1]["key"]
    values = _values(docs)
    eos_energies = _eos_energies(both)
    for task in ("PBE", "R2SCAN"):
        alone = tmp_path / task
        alone.mkdir()
        status, out = _run(alone, capsys, task)
        assert status == 0, out
        single = _values(_docs(alone, capsys))
        assert {k for k in values if k[2] == task} == set(single)
        for k, v in single.items():
            # an EOS fit stops at scipy's least-squares tolerance: energies
            # 1e-16 apart (another batch's summation order) move v0 by up to
            # ~1e-9, so v0 gets 1e-7 and its inputs, the energies, 1e-12
            rel = 1e-7 if k[1] == "eos" else 1e-9
            assert values[k] == pytest.approx(v, rel=rel, abs=1e-9), k
        alone_energies = _eos_energies(alone)
        assert len(alone_energies) == 3  # CaO, MgO, MgO (CsCl)
        for k, v in alone_energies.items():
            np.testing.assert_allclose(eos_energies[k], v, rtol=1e-12, err_msg=k)
    plots = [p for d in docs for p in d.get("plots") or []]
    assert len(plots) == len(set(plots)) > 0
    # one task of the two, rerun in the same store: every result reused
    status, out = _run(both, capsys, "PBE")
    assert status == 0 and "0 to compute" in out, out
    r2scan = _docs(both, capsys, '{"model.task": "R2SCAN", "property": "stability"}')
    assert len(r2scan) == 3 and {d["model"]["task"] for d in r2scan} == {"R2SCAN"}
    # r2SCAN binds the oxides more strongly than PBE (PBE's O2 overbinding)
    formation = {
        (d["label"], d["model"]["task"]): d["formation_energy_per_atom"]
        for d in docs
        if d["property"] == "stability"
    }
    assert formation[("MgO", "R2SCAN")] < formation[("MgO", "PBE")] - 0.1
    store = str(both / "results")
    assert (
        main(
            [
                "query",
                '{"property": "stability"}',
                "--store",
                store,
                "--format",
                "tasks",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert table.startswith("stability by task") and "MgO (CsCl)" in table


def test_single_task_model_refuses_a_list(tmp_path, capsys):
    """7net-0 has no tasks: a list is a spec error naming task and its line."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "model: 7net-0\ndevice: cpu\ntask: [PBE, R2SCAN]\n"
        "structures:\n  - {bulk: Cu, crystal: fcc, a: 3.61}\n"
    )
    assert main(["run", str(spec), "--store", str(tmp_path / "r")]) == 2
    err = capsys.readouterr()
    message = err.out + err.err
    assert "spec.yaml:3: task: 7net-0 is a single-task model" in message
