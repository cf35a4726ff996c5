"""Screening the CoRE MOF database: filters on the package's real data, specs
that name its entries, bad frameworks that fail alone, and one batched run."""

import csv
import json
import sys
import textwrap
import warnings

import pytest
from pymatgen.core import Structure

from sevenomni_flows.adsorption import core_mof
from sevenomni_flows.spec import SpecError, load_spec

pytest.importorskip("CoRE_MOF")

ASR = "2019-ASR"
#: Two small CoRE MOFs with open metal sites and pores wide enough for N2.
SMALL = ["ATOWIQ_clean", "AVIPOL_clean"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder of this module's own (the user's is left alone)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(folder))
        yield folder / "sevenomni" / "core-mof"


def _csv_rows() -> dict[str, dict]:
    """The package's CSV read plainly, by file name (the oracle)."""
    path = core_mof.require().__file__.rsplit("/", 1)[0] + f"/data/{ASR}.csv"
    with open(path, newline="") as f:
        return {row["filename"]: row for row in csv.DictReader(f)}


def test_filter_limit_and_order_on_the_real_table():
    """Rows pass every condition (checked against the CSV read plainly),
    come in refcode order, and ``limit`` keeps the first ones."""
    raw = _csv_rows()
    spec = {"has_oms": True, "PLD": {"$gt": 3.5}, "lcd": {"$lt": 8}}
    rows = core_mof.select(ASR, spec)
    expect = sorted(
        name
        for name, r in raw.items()
        if r["Has_OMS"] == "Yes" and float(r["PLD"]) > 3.5 and float(r["LCD"]) < 8
    )
    assert [r["refcode"] for r in rows] == expect
    assert 1000 < len(rows) < len(raw)
    first = core_mof.select(ASR, spec, limit=5)
    assert [r["refcode"] for r in first] == expect[:5]
    assert first[0]["Has_OMS"] is True and isinstance(first[0]["PLD"], float)
    cu = core_mof.select(ASR, {"All_Metals": "Cu", "PLD": {"$gte": 6}}, limit=3)
    assert all(r["All_Metals"] == "Cu" and r["PLD"] >= 6 for r in cu)
    some = core_mof.select(ASR, {"refcode": {"$in": SMALL[::-1]}})
    assert [r["refcode"] for r in some] == SMALL
    with pytest.raises(ValueError, match="unknown column 'pore'; columns: refcode"):
        core_mof.select(ASR, {"pore": 3})
    with pytest.raises(ValueError, match=r"unknown operator '\$between'"):
        core_mof.select(ASR, {"PLD": {"$between": [3, 4]}})


def test_cif_columns_and_cached_extraction(cache):
    """The atom count read from the CIF text equals pymatgen's; extracted CIFs
    are cached by refcode and reused."""
    rows = core_mof.select(ASR, {"refcode": {"$in": SMALL}, "n_atoms": {"$gt": 0}})
    assert [r["refcode"] for r in rows] == SMALL
    paths = core_mof.cif_paths(ASR, SMALL)
    assert all(p.is_relative_to(cache) for p in paths.values())
    for row in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Structure.from_file(paths[row["refcode"]])
        assert row["n_atoms"] == len(s)
        assert row["a"] == pytest.approx(s.lattice.a, abs=1e-3)
        assert row["volume"] == pytest.approx(s.volume, rel=1e-4)
    stamp = {r: p.stat().st_mtime_ns for r, p in paths.items()}
    again = core_mof.cif_paths(ASR, SMALL)
    assert {r: p.stat().st_mtime_ns for r, p in again.items()} == stamp
    with pytest.raises(KeyError, match="NOTAMOF"):
        core_mof.cif_paths(ASR, ["NOTAMOF"])


def _spec(tmp_path, body: str):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_spec_errors_name_key_and_line(tmp_path, monkeypatch):
    """Unknown columns, misplaced keys and a missing package: key and line."""
    cases = [
        ("{core_mof: 2019-ASR, filter: {pore: 3}}", "frameworks.0.filter", "'pore'"),
        ("{core_mof: 2019-XYZ}", "frameworks.0.core_mof", "2019-ASR"),
        ("{file: x.cif, limit: 3}", "frameworks.0", "go with 'core_mof'"),
        ("{core_mof: 2019-ASR, pld: 3.0}", "frameworks.0", "'pld' goes with"),
        ("{glob: '*.cif', name: x}", "frameworks.0", "'name' goes with 'file'"),
    ]
    for entry, key, what in cases:
        path = _spec(tmp_path, f"properties: []\nframeworks:\n  - {entry}\n")
        with pytest.raises(SpecError) as err:
            load_spec(path)
        assert f"{path}:3: {key}:" in str(err.value) and what in str(err.value)
    monkeypatch.setitem(sys.modules, "CoRE_MOF", None)  # not installed
    path = _spec(tmp_path, "frameworks:\n  - {core_mof: 2019-ASR}\n")
    with pytest.raises(SpecError, match="pip install") as err:
        load_spec(path)
    assert f"{path}:2: frameworks.0.core_mof:" in str(err.value)


def test_a_core_mof_entry_plans_its_frameworks_in_shared_jobs(tmp_path, cache):
    """The entry plans the rows the filter selects (by refcode), beside a
    file and a glob, all in one widom job, or chunks of structures_per_job."""
    from sevenomni_flows.run import open_store, plan

    (tmp_path / "cifs").mkdir()
    others = ["AVIPOL_clean", "CIFMEL_clean", "AFOYAW_clean"]  # not selected
    for refcode, path in core_mof.cif_paths(ASR, others).items():
        (tmp_path / "cifs" / f"copy-{refcode}.cif").write_text(path.read_text())
    path = _spec(
        tmp_path,
        f"""
        model: 7net-0
        device: cpu
        properties: []
        frameworks:
          - {{core_mof: {ASR}, filter: {{has_oms: true, PLD: {{$gt: 3.7}},
              supercell_atoms: {{$lte: 110}}}}, limit: 4}}
          - {{glob: "cifs/*.cif"}}
          - {{file: cifs/copy-{others[0]}.cif, name: mine}}
        framework_properties: [widom]
        widom: {{guests: [CO2], n_insertions: 10}}
        """,
    )
    spec, base = load_spec(path)
    small = {"Has_OMS": True, "PLD": {"$gt": 3.7}, "supercell_atoms": {"$lte": 110}}
    expect = [r["refcode"] for r in core_mof.select(ASR, small)][:4]
    run = plan(spec, base, open_store(tmp_path / "results"), spec.model_settings(), "p")
    labels = [label for label, _ in run.planned.values()]
    assert labels == [*expect, *(f"copy-{r}" for r in sorted(others))]
    assert run.n_frameworks == 8  # "mine" repeats copy-AVIPOL: computed once
    assert not run.input_failures and len(run.planned) == 7
    [job] = run.flow.jobs
    assert job.name == "widom (7)"
    spec.cluster.structures_per_job = 3
    run = plan(spec, base, open_store(tmp_path / "results"), spec.model_settings(), "p")
    assert [j.name for j in run.flow.jobs] == ["widom (3)", "widom (3)", "widom (1)"]


DISORDERED = """data_disordered
_cell_length_a 10.0
_cell_length_b 10.0
_cell_length_c 10.0
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
Zn1 Zn 0.0 0.0 0.0 1.0
O1 O 0.2 0.0 0.0 0.5
O2 O 0.0 0.2 0.0 1.0
"""


def test_bad_frameworks_fail_alone_and_the_rest_runs_in_one_job(
    tmp_path, cache, capsys
):
    """Two CoRE MOFs, a disordered CIF, a dense crystal (no pore) and a file
    whose pore-limiting diameter blocks N2, in one run: every framework ends
    in its documents, the good ones completed in one shared widom job, with
    selectivities and Q_st in the table and the query."""
    from ase.build import bulk
    from ase.io import write

    from sevenomni_flows.cli import main

    (tmp_path / "disordered.cif").write_text(DISORDERED)
    write(tmp_path / "copper.cif", bulk("Cu", "fcc", a=3.61, cubic=True))
    narrow = core_mof.cif_paths(ASR, ["CIFMEL_clean"])["CIFMEL_clean"].read_text()
    (tmp_path / "narrow.cif").write_text(narrow)
    path = _spec(
        tmp_path,
        f"""
        model: 7net-0
        device: cpu
        properties: []
        frameworks:
          - {{core_mof: {ASR}, filter: {{refcode: {{$in: {SMALL}}}}}}}
          - {{file: disordered.cif}}
          - {{file: copper.cif}}
          - {{file: narrow.cif, pld: 3.4}}
        framework_properties: [widom]
        widom: {{guests: [CO2, N2], n_insertions: 10, site_relaxations: 0}}
        """,
    )
    store = str(tmp_path / "results")
    assert main(["run", str(path), "--store", store]) == 1  # the bad ones fail
    out = capsys.readouterr().out
    assert "5 frameworks" in out and "in 2 jobs" in out  # [CO2, N2] and [CO2]
    main(["query", "{}", "--store", store, "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    by = {(r["label"], r.get("guest")): r for r in rows}
    assert len(rows) == 2 * 2 + 1 + 2 + 2
    for refcode in SMALL:
        co2, n2 = by[(refcode, "CO2")], by[(refcode, "N2")]
        assert co2["state"] == n2["state"] == "completed"
        assert co2["heat_of_adsorption"][0] is not None
        ratio = co2["henry_coefficient"][0] / n2["henry_coefficient"][0]
        assert co2["selectivity"]["N2"][0] == pytest.approx(ratio)
    bad = by[("disordered", None)]
    assert bad["property"] == "input" and "partially occupied" in bad["error"]
    for guest in ("CO2", "N2"):
        assert "no pore accessible" in by[("copper", guest)]["error"]
    assert by[("narrow", "CO2")]["state"] == "completed"
    blocked = by[("narrow", "N2")]
    assert blocked["state"] == "failed" and blocked["error_type"] == "PoreBlocked"
    assert "larger than the pore-limiting diameter 3.40 Å" in blocked["error"]
    # a rerun keeps the deterministic failures and reuses the rest
    assert main(["run", str(path), "--store", store]) == 1
    assert "0 to compute" in capsys.readouterr().out
