"""Error messages name the thing at fault, and no traceback reaches the user."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from sevenomni_core import SevenOmniCalculator, load_model
from sevenomni_core.io import read_frames
from sevenomni_core.model.potential import resolve_device
from sevenomni_flows.cli import main

pytestmark = pytest.mark.usefixtures("models_dir", "one_torch_thread")

FORMS = ("auto", "cpu", "cuda", "cuda:N")


def _no_traceback(out: str, err: str) -> None:
    assert "Traceback" not in out + err


# --- device names ---------------------------------------------------------


@pytest.mark.parametrize("name", ["gpu0", "cuda:x", "CPU", "", "xpu"])
def test_bad_device_name_lists_accepted_forms(name):
    """A name that is no device is named, with the forms that are accepted."""
    with pytest.raises(ValueError) as err:
        resolve_device(name)
    text = str(err.value)
    assert f"device {name!r} is not a device name" in text
    assert all(form in text for form in FORMS)


@pytest.mark.parametrize(
    "make",
    [
        lambda: load_model("7net-0", device="gpu0"),
        lambda: SevenOmniCalculator("7net-0", device="gpu0"),
    ],
    ids=["load_model", "calculator"],
)
def test_bad_device_in_python_api(make):
    """load_model and the calculator raise the same ValueError (not torch's)."""
    with pytest.raises(ValueError, match="device 'gpu0' is not a device name"):
        make()


def test_cuda_without_cuda_says_so(monkeypatch):
    """Asking for CUDA where there is none says that CUDA is not available."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError) as err:
            resolve_device(name)
        assert f"device {name!r} was requested but CUDA is not available" in str(
            err.value
        )
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_index_beyond_the_gpus(monkeypatch):
    """cuda:N for a GPU the machine lacks names the devices it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError) as err:
        resolve_device("cuda:2")
    assert "'cuda:2'" in str(err.value)
    assert "has 2 CUDA devices (cuda:0 to cuda:1)" in str(err.value)
    assert resolve_device("cuda:1") == torch.device("cuda:1")


def test_eval_with_bad_device(capsys):
    """``sevenomni eval --device gpu0``: one error line, status 2."""
    from pathlib import Path

    cif = Path(__file__).resolve().parents[2] / "workflows/structures/GaAs.cif"
    status = main(["eval", str(cif), "--model", "7net-0", "--device", "gpu0"])
    out, err = capsys.readouterr()
    assert status == 2
    _no_traceback(out, err)
    assert err.startswith("error: device 'gpu0' is not a device name")


def test_run_spec_with_bad_device_names_key_and_line(tmp_path, capsys):
    """``device: gpu0`` in a spec: ``spec.yaml:LINE: device: ...``, status 2."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            """\
            model: 7net-0
            task: null
            device: gpu0
            structures:
              - {bulk: Cu, crystal: fcc, a: 3.61}
            properties: [relax]
            """
        )
    )
    status = main(["run", str(spec), "--store", str(tmp_path / "results")])
    out, err = capsys.readouterr()
    assert status == 2
    _no_traceback(out, err)
    [line] = err.splitlines()
    assert line.startswith(f"error: {spec}:3: device: 'gpu0' is not a device name")
    assert all(form in line for form in FORMS)


# --- query ----------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    """A results folder holding one EOS result."""
    from sevenomni_flows.run import open_store
    from sevenomni_flows.stores.results import results_store

    folder = tmp_path / "results"
    results = results_store(open_store(folder))
    results.update(
        [
            {
                "key": "k1",
                "label": "Cu",
                "formula": "Cu",
                "property": "eos",
                "state": "completed",
                "b0": 140.0,
                "model": {"name": "7net-0"},
            }
        ],
        key="key",
    )
    return folder


def _query(capsys, store, *args) -> tuple[int, str, str]:
    status = main(["query", *args, "--store", str(store)])
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    return status, out, err


@pytest.mark.parametrize(
    "flt, bad",
    [
        ('{"b0": {"$gtx": 5}}', "'$gtx' (on b0)"),
        ('{"$where": "this.b0 > 1"}', "'$where'"),
        ('{"$or": [{"b0": {"$lt": 1}}, {"b0": {"$gteq": 1}}]}', "'$gteq' (on b0)"),
        ('{"b0": {"$not": {"$big": 1}}}', "'$big' (on b0)"),
    ],
)
def test_query_unknown_operator(capsys, store, flt, bad):
    """An unknown operator is named, with the supported ones; status 2."""
    status, out, err = _query(capsys, store, flt)
    assert status == 2 and not out
    [line] = err.splitlines()
    assert f"unknown query operator {bad}" in line
    assert "supported: $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin" in line


@pytest.mark.parametrize(
    "flt, why",
    [
        ('{"b0": 5', "not valid JSON/YAML: expected ',' or '}'"),
        ("[1, 2]", "is not a mapping"),
        ('{"$and": {"b0": 1}}', "$and takes a list of filters"),
        ('{"label": {"$regex": "("}}', "$regex (on label): '(' is not a regular"),
        ('{"b0": {"$mod": [0, 1]}}', "$mod (on b0) takes [divisor, remainder]"),
        ('{"b0": {"$in": 5}}', "the store rejected it: $in needs an array"),
    ],
)
def test_query_bad_filter_names_problem(capsys, store, flt, why):
    """A filter that cannot run: one line quoting it and saying why."""
    status, out, err = _query(capsys, store, flt)
    assert status == 2 and not out
    [line] = err.splitlines()
    assert line.startswith(f"error: filter {flt!r}")
    assert why in line


def test_query_without_matches_says_so(capsys, store):
    """No match: the table says so; JSON is ``[]`` and CSV its header."""
    flt = '{"b0": {"$gt": 500}}'
    status, out, err = _query(capsys, store, flt)
    assert status == 0
    assert out.strip() == f"no results match {flt} in {store}"
    status, out, err = _query(capsys, store, flt, "--format", "json")
    assert status == 0 and json.loads(out) == []
    assert f"no results match {flt}" in err
    status, out, err = _query(capsys, store, flt, "--format", "csv")
    assert status == 0 and out.strip().startswith("label,formula")
    assert len(out.strip().splitlines()) == 1
    status, out, _ = _query(capsys, store, '{"b0": {"$gt": 100}}')
    assert status == 0 and "Cu" in out  # the store does hold a result


def test_query_empty_and_missing_store(capsys, tmp_path):
    """A new, empty results folder says nothing is stored; a missing one errs."""
    empty = tmp_path / "new"
    empty.mkdir()
    status, out, _ = _query(capsys, empty)
    assert status == 0 and out.strip() == f"no results are stored in {empty}"
    status, out, err = _query(capsys, tmp_path / "nowhere")
    assert status == 2 and f"no results store at {tmp_path / 'nowhere'}" in err


# --- structure files ------------------------------------------------------

CIF = """\
data_bad
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
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
Cu1 Cu 0.5 0.5 0.5 1
Xx1 Xx 0 0 0 1
"""


def test_cif_unknown_element(tmp_path):
    """A CIF naming element Xx: the file, the site and 'not a chemical element'."""
    path = tmp_path / "bad.cif"
    path.write_text(CIF)
    [frame] = read_frames(path)
    assert frame.atoms is None
    assert frame.error == "bad.cif: site Xx1: 'Xx' is not a chemical element"


def test_ase_unknown_element(tmp_path):
    """ASE's KeyError('Xx') for an unknown symbol becomes an explicit message."""
    path = tmp_path / "bad.xyz"
    path.write_text("2\n\nXx 0 0 0\nCu 2 2 2\n")
    [frame] = read_frames(path)
    assert frame.atoms is None
    assert (
        frame.error == "bad.xyz: cannot read as extxyz: 'Xx' is not a chemical element"
    )
