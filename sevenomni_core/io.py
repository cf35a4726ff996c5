"""Reading structure files frame by frame, with one clear error per bad item.

:func:`read_frames` reads every frame of a file (or every structure file of a
folder) into :class:`Frame` objects. It never raises for unreadable content:
a frame that cannot be used carries ``atoms=None`` and an ``error`` that names
the file and the frame or site at fault, so one bad item fails alone.

>>> from ase.build import bulk
>>> from ase.io import write
>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> write(os.path.join(folder, "cu.extxyz"), [bulk("Cu"), bulk("Cu", cubic=True)])
>>> [(f.label, len(f.atoms)) for f in read_frames(os.path.join(folder, "cu.extxyz"))]
[('cu.extxyz[0]', 1), ('cu.extxyz[1]', 4)]
>>> read_frames(os.path.join(folder, "none.cif"))[0].error  # doctest: +ELLIPSIS
'...none.cif: no such file'
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import sqlite3
import warnings
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ase import Atoms

__all__ = ["Frame", "read_frames"]

#: what ``read_frames`` unpacks by suffix before choosing the format
_COMPRESSED: dict[str, Callable[..., Any]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
#: suffix (after decompression) -> ASE format; others are read by their own reader
_ASE_FORMATS = {
    ".xyz": "extxyz",
    ".extxyz": "extxyz",
    ".traj": "traj",
    ".vasp": "vasp",
    ".poscar": "vasp",
}
#: ASE format -> the name used in error messages, where they differ
_FORMAT_NAMES = {"vasp": "POSCAR", "traj": "ASE trajectory"}
#: names read as POSCAR whatever their suffix
_VASP_NAMES = ("POSCAR", "CONTCAR")
#: suffixes a folder is scanned for (other files in it are skipped)
_FOLDER_SUFFIXES = frozenset(
    {".cif", ".mcif", ".json", ".db", *_ASE_FORMATS}
    | {".xsf", ".pdb", ".cfg", ".gen", ".res", ".cell", ".gro", ".sdf", ".mol"}
)
_PERIODIC_HINT = "these properties need a periodic 3D cell"
_ORDER_HINT = (
    "give an ordered structure (e.g. pymatgen OrderDisorderedStructureTransformation)"
)


@dataclass
class Frame:
    """One structure read from a file, or why it could not be read.

    Attributes
    ----------
    label : str
        The file name, with ``[i]`` for frame ``i`` of a multi-frame file, e.g.
        ``"structures.extxyz[17]"``; inside a folder ``"folder/GaAs.cif"``.
    atoms : ase.Atoms or None
        The structure; ``None`` when this item could not be read.
    error : str or None
        Why not, naming the file and the frame or site at fault.
    name : str or None
        The frame's own name, where the file gives one: ``label`` or
        ``name`` in an extxyz frame's info or an ASE database row, or the
        data block of a CIF.
    """

    label: str
    atoms: Atoms | None
    error: str | None = None
    name: str | None = None


def read_frames(
    path: str | os.PathLike, periodic: bool = False, *, label: str | None = None
) -> list[Frame]:
    """Every structure in a file or folder, one :class:`Frame` each.

    Parameters
    ----------
    path : str or os.PathLike
        A structure file (CIF, POSCAR/CONTCAR/``.vasp``, extxyz/xyz, ASE
        ``.db`` or ``.traj``, pymatgen or ASE-database JSON, optionally
        ``.gz``, or anything else ASE reads) or a folder, whose structure
        files are read in name order (not recursively; hidden files and
        unknown suffixes are skipped).
    periodic : bool
        Require a full 3D periodic cell: molecules and slabs get an error.
    label : str, optional
        The label prefix in place of the file or folder name (e.g. the path
        as the user typed it).

    Returns
    -------
    list of Frame
        At least one; unreadable items have ``atoms=None`` and an ``error``.
        Partially occupied sites are an error, never silently ordered.
    """
    given = os.fspath(path)
    path = Path(given)
    name = label or Path(os.path.abspath(given)).name
    if path.is_dir():
        frames = _read_folder(path, name)
    elif not path.exists():
        return [Frame(name, None, f"{given}: no such file")]
    else:
        frames = _read_file(path, name)
    if periodic:
        frames = [_require_periodic(frame) for frame in frames]
    return frames


def _read_folder(folder: Path, name: str) -> list[Frame]:
    """The frames of every structure file directly in ``folder``."""
    try:
        files = sorted(p for p in folder.iterdir() if _is_structure_file(p))
    except OSError as err:
        return [Frame(name, None, f"{name}: cannot list folder: {_reason(err)}")]
    if not files:
        return [Frame(name, None, f"{name}: no structure files in folder")]
    return [frame for p in files for frame in _read_file(p, f"{name}/{p.name}")]


def _is_structure_file(path: Path) -> bool:
    """Whether a folder scan reads ``path`` (a visible file of a known kind)."""
    if path.name.startswith(".") or not path.is_file():
        return False
    return path.name.startswith(_VASP_NAMES) or _suffix(path) in _FOLDER_SUFFIXES


def _suffix(path: Path) -> str:
    """The lower-case suffix that names the format, below any compression."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _read_file(path: Path, name: str) -> list[Frame]:
    """The frames of one file, labelled ``name`` or ``name[i]``."""
    suffix = _suffix(path)
    if suffix in {".cif", ".mcif"}:
        kind, reader = "CIF", _read_cif
    elif suffix == ".json":
        kind, reader = "JSON", _read_json
    elif suffix == ".db":
        kind, reader = "ASE db", _read_db
    else:
        fmt = _ASE_FORMATS.get(suffix)
        if fmt is None and path.name.startswith(_VASP_NAMES):
            fmt = "vasp"
        kind = _FORMAT_NAMES.get(fmt, fmt or "")
        reader = partial(_read_ase, fmt=fmt)
    try:
        if path.stat().st_size == 0:
            return [Frame(name, None, f"{name}: no structures in file (it is empty)")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # parsers warn on what they can read
            items = reader(path)
    except Exception as err:  # a parser may raise anything on a bad file
        what = f"as {kind}" if kind else "structure"
        return [Frame(name, None, f"{name}: cannot read {what}: {_reason(err)}")]
    if not items:
        return [Frame(name, None, f"{name}: no structures in file")]
    frames = []
    for i, item in enumerate(items):
        label = name if len(items) == 1 else f"{name}[{i}]"
        if isinstance(item, str):
            frames.append(Frame(label, None, f"{label}: {item}"))
        elif len(item) == 0:
            frames.append(Frame(label, None, f"{label}: no atoms"))
        else:
            frames.append(Frame(label, item, name=_own_name(item)))
    return frames


def _own_name(atoms: Atoms) -> str | None:
    """The name a file gives a frame (``label`` or ``name`` in its info)."""
    for key in ("label", "name"):
        value = atoms.info.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _read_text(path: Path) -> str:
    """The text of a file, decompressed by its suffix."""
    opener = _COMPRESSED.get(path.suffix.lower(), open)
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _read_ase(path: Path, fmt: str | None) -> list[Atoms | str]:
    """Every frame ASE reads; a failure mid-file ends the list with its reason."""
    from ase.io import iread
    from ase.io.formats import filetype, ioformats

    if fmt is None:
        try:
            fmt = filetype(str(path))
        except Exception:  # ase raises several kinds for unknown files
            fmt = None
        if fmt not in ioformats:  # filetype falls back to the bare suffix
            return ["cannot read: not a structure format ASE knows"]
    items: list[Atoms | str] = []
    try:
        for atoms in iread(str(path), index=":", format=fmt):
            items.append(atoms)
    except Exception as err:  # ase readers raise many kinds on bad content
        kind = _FORMAT_NAMES.get(fmt, fmt)
        items.append(f"cannot read as {kind}: {_reason(err)}")
    return items


def _read_db(path: Path) -> list[Atoms | str]:
    """Every row of an ASE SQLite database, in id order."""
    from ase.db import connect

    # check read-only first: ase would add its tables to a foreign SQLite file
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as con:
        query = "SELECT COUNT(*) FROM sqlite_master WHERE name='systems'"
        if con.execute(query).fetchone()[0] == 0:
            raise ValueError("not an ASE database (no 'systems' table)")
    items: list[Atoms | str] = []
    for row in connect(str(path), type="db").select():
        try:
            atoms = row.toatoms()
            for key in ("label", "name"):
                if isinstance(row.get(key), str):
                    atoms.info[key] = row.get(key)
            items.append(atoms)
        except Exception as err:  # one bad row fails alone
            items.append(f"cannot read row id={row.id}: {_reason(err)}")
    return items


def _read_json(path: Path) -> list[Atoms | str]:
    """pymatgen ``as_dict()`` output (one or a list) or an ASE JSON database."""
    text = _read_text(path)
    data = json.loads(text)
    if isinstance(data, dict) and ("ids" in data or "1" in data):
        from ase.db.row import AtomsRow
        from ase.io.jsonio import decode

        rows = decode(text)
        ids = [int(i) for i in rows.get("ids", [1])]
        return [_ase_json_row(AtomsRow, rows[i]) for i in ids]
    if isinstance(data, list):
        return [_pymatgen_item(item) for item in data]
    if isinstance(data, dict):
        return [_pymatgen_item(data)]
    raise ValueError("neither a pymatgen Structure/Molecule nor an ASE database")


def _ase_json_row(row_class: type, row: dict) -> Atoms | str:
    """One row of an ASE JSON database as Atoms, or why not."""
    try:
        return row_class(row).toatoms()
    except Exception as err:  # one bad row fails alone
        return f"cannot read ASE database row: {_reason(err)}"


def _pymatgen_item(data: Any) -> Atoms | str:
    """A pymatgen Structure/Molecule dict as Atoms, or why not."""
    from pymatgen.core import Molecule, Structure

    if isinstance(data, dict) and "sites" not in data:
        data = data.get("structure", data)  # entries and task documents
    if not isinstance(data, dict) or "sites" not in data:
        return "cannot read as JSON: not a pymatgen Structure or Molecule dict"
    try:
        cls = Structure if "lattice" in data else Molecule
        return _from_pymatgen(cls.from_dict(data))
    except Exception as err:  # pymatgen raises many kinds on bad dicts
        return f"cannot read as pymatgen JSON: {_reason(err)}"


def _read_cif(path: Path) -> list[Atoms | str]:
    """Every data block of a CIF with atom sites, via pymatgen's CifParser."""
    from pymatgen.io.cif import CifFile, CifParser

    blocks = [
        text
        for text in _cif_blocks(_read_text(path))
        if any(
            key.lower().startswith("_atom_site")
            for block in CifFile.from_str(text).data.values()
            for key in block.data
        )
    ]
    if not blocks:
        raise ValueError("no data_ block with atom sites (_atom_site_...)")
    items: list[Atoms | str] = []
    for text in blocks:
        try:
            parser = CifParser.from_str(text)
            [structure] = parser.parse_structures(primitive=False, on_error="raise")
            atoms = _from_pymatgen(structure)
            if isinstance(atoms, Atoms):  # else why it cannot be used
                [block] = CifFile.from_str(text).data
                atoms.info.setdefault("name", block)
            items.append(atoms)
        except Exception as err:  # one bad block fails alone
            items.append(f"cannot read as CIF: {_reason(err)}")
    return items


def _cif_blocks(text: str) -> list[str]:
    r"""The text of each ``data_`` block, in file order.

    Split here rather than by pymatgen's ``CifFile``, whose dict of blocks
    keeps only the last of several blocks with the same name.

    >>> _cif_blocks("# c\ndata_a\n_x 1\n;\ndata_not\n;\ndata_a\n_x 2\n")
    ['data_a\n_x 1\n;\ndata_not\n;\n', 'data_a\n_x 2\n']
    """
    blocks: list[list[str]] = []
    in_text_field = False
    for line in text.splitlines(keepends=True):
        if line.startswith(";"):
            in_text_field = not in_text_field
        elif not in_text_field and line.lstrip().lower().startswith("data_"):
            blocks.append([])
        if blocks:
            blocks[-1].append(line)
    return ["".join(lines) for lines in blocks]


def _from_pymatgen(structure: Any) -> Atoms | str:
    """An ordered pymatgen Structure/Molecule as Atoms; the disorder otherwise."""
    from pymatgen.io.ase import AseAtomsAdaptor

    unknown = _unknown_element(structure)
    if unknown is not None:
        return unknown
    disorder = _disordered_site(structure)
    if disorder is not None:
        return f"{disorder}; {_ORDER_HINT}"
    return AseAtomsAdaptor.get_atoms(structure, msonable=False)


def _unknown_element(structure: Any) -> str | None:
    """The first site of a pymatgen structure whose species is no element.

    pymatgen reads an unknown symbol (``Xx`` in a CIF) as a dummy species.

    >>> from pymatgen.core import Lattice, Structure
    >>> from pymatgen.core.periodic_table import DummySpecies
    >>> sites = ["Cu", DummySpecies("Xx")]
    >>> s = Structure(Lattice.cubic(3), sites, [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> _unknown_element(s)
    "site 1: 'Xx' is not a chemical element"
    """
    from ase.data import atomic_numbers

    for i, site in enumerate(structure):
        for species in site.species:
            symbol = getattr(species, "symbol", str(species))
            if symbol not in atomic_numbers:
                named = site.label and site.label not in (symbol, site.species_string)
                where = site.label if named else i  # the CIF's name if it has one
                return f"site {where}: {symbol!r} is not a chemical element"
    return None


def _disordered_site(structure: Any) -> str | None:
    """The first partially occupied site of a pymatgen structure, or None.

    >>> from pymatgen.core import Lattice, Structure
    >>> s = Structure(Lattice.cubic(3), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    >>> _disordered_site(s)
    'site 0 has partial occupancy (Fe:0.5, Ni:0.5)'
    """
    bad = [i for i, site in enumerate(structure) if not site.is_ordered]
    if not bad:
        return None
    site = structure[bad[0]]
    occupancy = [f"{sp}:{amount:g}" for sp, amount in site.species.items()]
    vacancy = 1.0 - site.species.num_atoms
    if vacancy > 1e-8:
        occupancy.append(f"vacancy:{vacancy:g}")
    why = f"site {bad[0]} has partial occupancy ({', '.join(occupancy)})"
    if site.label and site.label != site.species_string:
        why += f", labelled {site.label}"  # the CIF's name for it
    if len(bad) == 2:
        why += "; 1 more site is partially occupied"
    elif len(bad) > 2:
        why += f"; {len(bad) - 1} more sites are partially occupied"
    return why


def _require_periodic(frame: Frame) -> Frame:
    """``frame``, or an error frame when it lacks a full 3D periodic cell."""
    atoms = frame.atoms
    if atoms is None:
        return frame
    if not atoms.pbc.any() or atoms.cell.volume < 1e-6:
        why = "no periodic cell"
    elif not atoms.pbc.all():
        why = f"not periodic along all three axes (pbc={atoms.pbc.tolist()})"
    else:
        return frame
    return Frame(frame.label, None, f"{frame.label}: {why}; {_PERIODIC_HINT}")


def _reason(err: BaseException) -> str:
    """A one-line reason from an exception (its cause where it wraps one)."""
    err = err.__cause__ or err
    text = " ".join(str(err).split())
    if isinstance(err, KeyError):
        key = err.args[0] if len(err.args) == 1 else None
        if isinstance(key, str) and _looks_like_symbol(key):
            return f"{key!r} is not a chemical element"
        return f"missing key {text}" if text else "missing key"
    return text or type(err).__name__


def _looks_like_symbol(text: str) -> bool:
    """Whether ``text`` is written like an element symbol (``Xx``) but is none.

    ASE raises ``KeyError('Xx')`` for an unknown symbol.

    >>> _looks_like_symbol("Xx"), _looks_like_symbol("Cu"), _looks_like_symbol("pbc")
    (True, False, False)
    """
    from ase.data import atomic_numbers

    return bool(re.fullmatch("[A-Z][a-z]{0,2}", text)) and text not in atomic_numbers
