"""``sevenomni_core.io.read_frames``: every frame of every input, or a named error."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.db import connect
from ase.io import write
from ase.io.trajectory import Trajectory
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter

from sevenomni_core.io import Frame, read_frames

ORDER_HINT = "give an ordered structure"


def _rattled(n: int) -> list[Atoms]:
    """``n`` distinct Cu cells: different lattice constants and rattles."""
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.5 + 0.05 * k, cubic=True)
        atoms.rattle(0.05, seed=k)
        frames.append(atoms)
    return frames


def _same(frame: Frame, ref: Atoms) -> None:
    """``frame`` read fine and holds ``ref`` (species, cell, positions, pbc).

    Positions are compared modulo the cell: CIF and pymatgen wrap atoms into it.
    """
    assert frame.error is None, frame.error
    atoms = frame.atoms
    assert atoms.get_chemical_symbols() == ref.get_chemical_symbols()
    np.testing.assert_allclose(atoms.cell, ref.cell, atol=1e-6)
    assert atoms.pbc.tolist() == ref.pbc.tolist()
    if not ref.pbc.any():
        np.testing.assert_allclose(atoms.positions, ref.positions, atol=1e-6)
        return
    shift = atoms.get_scaled_positions(wrap=False) - ref.get_scaled_positions(False)
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-6)


def _labels(frames: list[Frame]) -> list[str]:
    return [f.label for f in frames]


def _only_error(frames: list[Frame]) -> str:
    [frame] = frames
    assert frame.atoms is None
    assert frame.error is not None
    return frame.error


def _disordered(species: dict[str, float]) -> Structure:
    """Three ordered Cu sites, then one site with ``species`` (site 3)."""
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(3.6), ["Cu", "Cu", "Cu", species], coords)


# --- multi-frame files --------------------------------------------------------


def test_extxyz_every_frame(tmp_path):
    """A 5-frame extxyz gives 5 frames, x.extxyz[0]..[4], each its own positions."""
    ref = _rattled(5)
    write(tmp_path / "x.extxyz", ref)
    frames = read_frames(tmp_path / "x.extxyz")
    assert _labels(frames) == [f"x.extxyz[{i}]" for i in range(5)]
    for frame, atoms in zip(frames, ref, strict=True):
        _same(frame, atoms)


def test_single_frame_label_is_the_file_name(tmp_path):
    """One frame: the label is the file name alone, not the full path."""
    [atoms] = _rattled(1)
    write(tmp_path / "one.xyz", atoms, format="extxyz")
    [frame] = read_frames(str(tmp_path / "one.xyz"))
    assert frame.label == "one.xyz"
    _same(frame, atoms)


def test_ase_db_every_row(tmp_path):
    ref = _rattled(3)
    with connect(tmp_path / "rows.db") as db:
        for atoms in ref:
            db.write(atoms)
    frames = read_frames(tmp_path / "rows.db")
    assert _labels(frames) == ["rows.db[0]", "rows.db[1]", "rows.db[2]"]
    for frame, atoms in zip(frames, ref, strict=True):
        _same(frame, atoms)


def test_traj_every_frame(tmp_path):
    ref = _rattled(3)
    with Trajectory(tmp_path / "md.traj", "w") as traj:
        for atoms in ref:
            traj.write(atoms)
    frames = read_frames(tmp_path / "md.traj")
    assert _labels(frames) == ["md.traj[0]", "md.traj[1]", "md.traj[2]"]
    for frame, atoms in zip(frames, ref, strict=True):
        _same(frame, atoms)


def test_empty_multi_frame_file(tmp_path):
    """A database without rows, or an empty file: one frame, 'no structures'."""
    connect(tmp_path / "none.db").count()  # creates the tables, no rows
    (tmp_path / "empty.extxyz").write_text("")
    for name in ("none.db", "empty.extxyz"):
        error = _only_error(read_frames(tmp_path / name))
        assert error.startswith(f"{name}: no structures in file")


# --- JSON: pymatgen and ASE database ------------------------------------------


def test_pymatgen_json_single_list_and_gz(tmp_path):
    ref = _rattled(2)
    dicts = [AseAtomsAdaptor.get_structure(a).as_dict() for a in ref]
    (tmp_path / "s.json").write_text(json.dumps(dicts[0]))
    (tmp_path / "two.json").write_text(json.dumps(dicts))
    with gzip.open(tmp_path / "two.json.gz", "wt") as handle:
        json.dump(dicts, handle)

    [frame] = read_frames(tmp_path / "s.json")
    assert frame.label == "s.json"
    _same(frame, ref[0])
    for name in ("two.json", "two.json.gz"):
        frames = read_frames(tmp_path / name)
        assert _labels(frames) == [f"{name}[0]", f"{name}[1]"]
        for frame, atoms in zip(frames, ref, strict=True):
            _same(frame, atoms)


def test_pymatgen_molecule_json(tmp_path):
    """A pymatgen Molecule dict is a molecule: fine unless ``periodic``."""
    water = molecule("H2O")
    mol = AseAtomsAdaptor.get_molecule(water)
    (tmp_path / "w.json").write_text(json.dumps(mol.as_dict()))
    [frame] = read_frames(tmp_path / "w.json")
    assert frame.error is None
    np.testing.assert_allclose(frame.atoms.positions, water.positions, atol=1e-6)
    assert "no periodic cell" in _only_error(read_frames(tmp_path / "w.json", True))


def test_ase_json_database(tmp_path):
    """ASE's JSON database is told from pymatgen JSON by its content."""
    ref = _rattled(2)
    write(tmp_path / "ase.json", ref, format="json")
    frames = read_frames(tmp_path / "ase.json")
    assert _labels(frames) == ["ase.json[0]", "ase.json[1]"]
    for frame, atoms in zip(frames, ref, strict=True):
        _same(frame, atoms)


def test_json_that_is_no_structure(tmp_path):
    (tmp_path / "other.json").write_text('{"energy": 1.0}')
    (tmp_path / "broken.json").write_text("{not json")
    error = _only_error(read_frames(tmp_path / "other.json"))
    assert error.startswith("other.json: cannot read as JSON: not a pymatgen")
    error = _only_error(read_frames(tmp_path / "broken.json"))
    assert error.startswith("broken.json: cannot read as JSON: ")


# --- single-structure formats -------------------------------------------------


def test_cif(tmp_path):
    atoms = bulk("GaAs", "zincblende", a=5.65)
    write(tmp_path / "GaAs.cif", atoms)
    [frame] = read_frames(tmp_path / "GaAs.cif")
    assert frame.label == "GaAs.cif"
    assert frame.error is None
    assert frame.atoms.get_chemical_symbols() == ["Ga", "As"]
    np.testing.assert_allclose(frame.atoms.cell.cellpar(), atoms.cell.cellpar())
    np.testing.assert_allclose(
        frame.atoms.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-6
    )


@pytest.mark.parametrize("same_name", [False, True])
def test_multi_block_cif(tmp_path, same_name):
    """Each data_ block of a CIF is a frame, even blocks of the same name."""
    ref = _rattled(2)
    blocks = [str(CifWriter(AseAtomsAdaptor.get_structure(a))) for a in ref]
    if not same_name:
        blocks = [b.replace("data_Cu", f"data_block{k}") for k, b in enumerate(blocks)]
    text = "data_global\n_journal_year 2024\n\n" + "\n".join(blocks)
    assert text.count("data_") == 3
    (tmp_path / "two.cif").write_text(text)
    frames = read_frames(tmp_path / "two.cif")
    assert _labels(frames) == ["two.cif[0]", "two.cif[1]"]
    for frame, atoms in zip(frames, ref, strict=True):
        _same(frame, atoms)


def test_bad_cif_block_fails_alone(tmp_path):
    good = str(CifWriter(_disordered("Cu")))
    bad = good.replace("_cell_length_a   3.6", "_cell_length_a   abc")
    (tmp_path / "two.cif").write_text(bad + "\n" + good)
    first, second = read_frames(tmp_path / "two.cif")
    assert first.error.startswith("two.cif[0]: cannot read as CIF: ")
    assert second.error is None
    assert len(second.atoms) == 4


@pytest.mark.parametrize("name", ["POSCAR", "CONTCAR", "cell.vasp"])
def test_poscar(tmp_path, name):
    [atoms] = _rattled(1)
    write(tmp_path / name, atoms, format="vasp", direct=True)
    [frame] = read_frames(tmp_path / name)
    assert frame.label == name
    _same(frame, atoms)


# --- folders --------------------------------------------------------------------


def test_folder_reads_structure_files_in_order(tmp_path):
    """Sorted, not recursive, hidden and unknown files skipped, folder/name labels."""
    folder = tmp_path / "structs"
    (folder / "sub").mkdir(parents=True)
    ref = _rattled(4)
    write(folder / "a.cif", ref[0])
    write(folder / "b.extxyz", ref[1:3])
    write(folder / "POSCAR", ref[3], format="vasp")
    write(folder / ".hidden.cif", ref[0])
    write(folder / "sub" / "c.cif", ref[0])
    (folder / "notes.txt").write_text("not a structure")
    (folder / "README.md").write_text("# about these structures")
    frames = read_frames(folder)
    assert _labels(frames) == [
        "structs/POSCAR",
        "structs/a.cif",
        "structs/b.extxyz[0]",
        "structs/b.extxyz[1]",
    ]
    for frame, atoms in zip(frames, [ref[3], ref[0], ref[1], ref[2]], strict=True):
        assert frame.error is None, frame.error
        np.testing.assert_allclose(
            frame.atoms.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-6
        )


def test_folder_bad_file_fails_alone(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write(folder / "good.cif", bulk("Cu"))
    (folder / "bad.cif").write_text("this is not a CIF\n")
    frames = read_frames(folder)
    assert _labels(frames) == ["mixed/bad.cif", "mixed/good.cif"]
    assert frames[0].atoms is None
    assert frames[0].error.startswith("mixed/bad.cif: cannot read as CIF: ")
    assert frames[1].error is None


def test_empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("x")
    error = _only_error(read_frames(tmp_path / "nothing"))
    assert error == "nothing: no structure files in folder"


# --- partial occupancy ---------------------------------------------------------


@pytest.mark.parametrize(
    ("species", "occupancy"),
    [({"Fe": 0.5, "Ni": 0.5}, "Fe:0.5, Ni:0.5"), ({"Fe": 0.8}, "Fe:0.8, vacancy:0.2")],
)
def test_partial_occupancy_in_json(tmp_path, species, occupancy):
    """The site, its species and occupancies are named; no species is picked."""
    (tmp_path / "dis.json").write_text(json.dumps(_disordered(species).as_dict()))
    error = _only_error(read_frames(tmp_path / "dis.json"))
    assert error == (
        f"dis.json: site 3 has partial occupancy ({occupancy}); {ORDER_HINT} "
        "(e.g. pymatgen OrderDisorderedStructureTransformation)"
    )


@pytest.mark.parametrize(
    ("species", "occupancy"),
    [({"Fe": 0.5, "Ni": 0.5}, "Fe:0.5, Ni:0.5"), ({"Fe": 0.8}, "Fe:0.8, vacancy:0.2")],
)
def test_partial_occupancy_in_cif(tmp_path, species, occupancy):
    """As above, with the CIF label; the index is that of pymatgen's structure."""
    from pymatgen.io.cif import CifParser

    path = tmp_path / "disordered.cif"
    CifWriter(_disordered(species)).write_file(path)
    error = _only_error(read_frames(path))
    occupancy = re.escape(occupancy)
    pattern = (
        rf"disordered\.cif: site (\d) has partial occupancy \({occupancy}\), "
        rf"labelled (\w+); {ORDER_HINT} \("
    )
    match = re.match(pattern, error)
    assert match, error
    [structure] = CifParser(path).parse_structures(primitive=False)
    site = structure[int(match.group(1))]
    assert site.species.as_dict() == species
    assert site.label == match.group(2)


def test_partial_occupancy_in_one_frame_only(tmp_path):
    """In a list, only the disordered structure fails."""
    good = AseAtomsAdaptor.get_structure(bulk("Cu", cubic=True))
    items = [good.as_dict(), _disordered({"Fe": 0.5, "Ni": 0.5}).as_dict()]
    (tmp_path / "list.json").write_text(json.dumps(items))
    first, second = read_frames(tmp_path / "list.json")
    assert first.error is None
    assert len(first.atoms) == 4
    assert second.atoms is None
    assert second.error.startswith("list.json[1]: site 3 has partial occupancy")


def test_several_disordered_sites_are_counted(tmp_path):
    structure = _disordered({"Fe": 0.5, "Ni": 0.5})
    structure.replace(0, {"Cu": 0.9})
    (tmp_path / "two.json").write_text(json.dumps(structure.as_dict()))
    error = _only_error(read_frames(tmp_path / "two.json"))
    assert error.startswith(
        "two.json: site 0 has partial occupancy (Cu:0.9, vacancy:0.1); "
        "1 more site is partially occupied; give an ordered"
    )


# --- periodic cells -------------------------------------------------------------


def test_molecule_needs_periodic_only_when_asked(tmp_path):
    write(tmp_path / "water.xyz", molecule("H2O"))
    [frame] = read_frames(tmp_path / "water.xyz")
    assert frame.error is None
    assert len(frame.atoms) == 3
    error = _only_error(read_frames(tmp_path / "water.xyz", periodic=True))
    assert error == (
        "water.xyz: no periodic cell; these properties need a periodic 3D cell"
    )


def test_slab_and_zero_cell_are_not_periodic(tmp_path):
    slab = bulk("Cu", cubic=True)
    slab.pbc = [True, True, False]
    zero = Atoms("Cu", pbc=True)
    write(tmp_path / "cells.extxyz", [slab, zero, bulk("Cu")])
    frames = read_frames(tmp_path / "cells.extxyz", periodic=True)
    assert "not periodic along all three axes" in frames[0].error
    assert "periodic 3D cell" in frames[0].error
    assert frames[1].error.startswith("cells.extxyz[1]: no periodic cell")
    assert frames[2].error is None


# --- garbage ----------------------------------------------------------------------


def test_garbage_cif(tmp_path):
    (tmp_path / "junk.cif").write_text("this is not a CIF\n")
    error = _only_error(read_frames(tmp_path / "junk.cif"))
    assert error.startswith("junk.cif: cannot read as CIF: ")


def test_cif_with_bad_numbers_and_zero_cell(tmp_path):
    write(tmp_path / "ok.cif", bulk("Cu"))
    text = (tmp_path / "ok.cif").read_text()
    bad = text.replace("_cell_length_a", "_cell_length_a 0.0\n_x")
    (tmp_path / "zero.cif").write_text(bad)
    error = _only_error(read_frames(tmp_path / "zero.cif"))
    assert error.startswith("zero.cif: cannot read as CIF: ")


def test_parser_exception_becomes_an_error(tmp_path, monkeypatch):
    """Whatever a parser raises (here ZeroDivisionError) becomes the frame's error."""
    from pymatgen.io.cif import CifParser

    def divide(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(CifParser, "parse_structures", divide)
    write(tmp_path / "Cu.cif", bulk("Cu"))
    error = _only_error(read_frames(tmp_path / "Cu.cif"))
    assert error == "Cu.cif: cannot read as CIF: division by zero"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.cif", ""),
        ("garbage.extxyz", "3\nnot\nan extxyz\n"),
        ("garbage.traj", "not a trajectory"),
        ("garbage.db", "not a database " * 10),
        ("garbage.json.gz", "not gzip"),
        ("POSCAR", "just one line"),
        ("unknown.weird", "hello"),
    ],
)
def test_garbage_never_raises(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    error = _only_error(read_frames(tmp_path / name))
    assert error.startswith(f"{name}: ")
    assert "Traceback" not in error


def test_missing_file(tmp_path):
    path = tmp_path / "absent.cif"
    [frame] = read_frames(str(path))
    assert frame.atoms is None
    assert frame.error == f"{path}: no such file"


def test_label_override(tmp_path):
    write(tmp_path / "x.extxyz", _rattled(2))
    frames = read_frames(tmp_path / "x.extxyz", label="runs/x.extxyz")
    assert _labels(frames) == ["runs/x.extxyz[0]", "runs/x.extxyz[1]"]


def test_core_does_not_import_flows():
    source = Path(__file__).parents[2] / "sevenomni_core" / "io.py"
    assert not re.search(r"^\s*(from|import)\s+sevenomni_flows", source.read_text())


# --- the eval command -------------------------------------------------------------


@pytest.mark.usefixtures("models_dir", "one_torch_thread")
def test_eval_reports_disorder_and_evaluates_the_rest(tmp_path, capsys):
    """``eval`` fails the disordered CIF by name (status 1); the good file runs."""
    from sevenomni_core.cli.main import main

    disordered = tmp_path / "disordered.cif"
    CifWriter(_disordered({"Fe": 0.5, "Ni": 0.5})).write_file(disordered)
    good = tmp_path / "GaAs.cif"
    write(good, bulk("GaAs", "zincblende", a=5.65))
    argv = ["eval", str(disordered), str(good), "--model", "7net-0"]
    status = main([*argv, "--device", "cpu"])
    out, err = capsys.readouterr()
    assert status == 1
    assert f"error: {disordered}: site " in err
    assert "has partial occupancy (Fe:0.5, Ni:0.5)" in err
    assert str(disordered) not in out
    match = re.search(rf"{re.escape(str(good))}  AsGa\n  energy +(-?\d+\.\d+) eV", out)
    assert match, out
    assert np.isfinite(float(match.group(1)))
