"""The CoRE MOF database (``pip install core-mof``): list, filter and read entries.

The ``core-mof`` package ships each data set as a CSV of properties (pore
diameters from Zeo++, open metal sites, ...) beside a ``tar.xz`` of CIFs.
Rows are filtered on the CSV's columns and on a few columns read from the
CIFs themselves (:data:`CIF_COLUMNS`), in refcode order.  The CIFs are
extracted lazily, in one pass over the archive for all the entries asked
for, and cached by refcode in :func:`cache_dir` (nothing is written at
import, and nothing is downloaded).

>>> rows = select("2019-ASR", {"Has_OMS": True, "PLD": {"$gt": 4.0}}, limit=2)
>>> [r["refcode"] for r in rows]  # doctest: +SKIP
['ABAVIJ_clean', 'ABAYIO_clean']
"""

from __future__ import annotations

import csv
import functools
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sevenomni_core.model.registry import cache_root

from .mofs import repeats

__all__ = [
    "CIF_COLUMNS",
    "DATASETS",
    "INSTALL",
    "cache_dir",
    "cif_paths",
    "columns",
    "matches",
    "require",
    "select",
    "table",
]

#: The data sets of the package: CoRE MOF 2019 all-solvent-removed (ASR),
#: free-solvent-removed (FSR), and the 2014 release.
DATASETS = ("2019-ASR", "2019-FSR", "2014")
#: How to install the package (the message of a missing-package error).
INSTALL = "pip install 'sevenomni[mofs]' (or pip install core-mof)"
#: Columns read from each CIF (cached once per data set): atoms in the cell
#: as given, cell lengths (Å) and volume (Å³), and atoms after repeating the
#: cell to 12 Å per axis (the default ``min_length`` of the framework Makers).
CIF_COLUMNS = ("n_atoms", "a", "b", "c", "volume", "supercell_atoms")
#: Query operators of a filter (MongoDB's names).
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex")
_TRUE, _FALSE = {"yes", "y", "true"}, {"no", "n", "false"}
_CELL = re.compile(r"^_cell_(length_[abc]|angle_alpha|angle_beta|angle_gamma)\s+(\S+)")


def require():
    """The ``CoRE_MOF`` module, or an ImportError that says how to install it."""
    try:
        import CoRE_MOF
    except ImportError as err:
        raise ImportError(f"the CoRE MOF database is not installed: {INSTALL}") from err
    return CoRE_MOF


def _data(dataset: str, suffix: str) -> Path:
    """A file of the package's data folder: ``<dataset>.csv`` or ``.tar.xz``."""
    if dataset not in DATASETS:
        raise ValueError(
            f"unknown CoRE MOF data set {dataset!r}; choose from {', '.join(DATASETS)}"
        )
    return Path(require().__file__).parent / "data" / f"{dataset}{suffix}"


def cache_dir() -> Path:
    """Where extracted CIFs and the CIF columns are cached:
    ``$XDG_CACHE_HOME/sevenomni/core-mof`` (default ``~/.cache``; see
    :func:`~sevenomni_core.model.registry.cache_root`)."""
    return cache_root() / "core-mof"


def _value(text: str) -> Any:
    """A CSV cell as a number, a bool (Yes/No, Y/N), None (blank) or text."""
    text = text.strip()
    if not text:
        return None
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    try:
        return float(text)
    except ValueError:
        return text


@functools.cache
def _csv(dataset: str) -> tuple[tuple[str, ...], tuple[dict, ...]]:
    path = _data(dataset, ".csv")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h for h in next(reader) if h]
        rows = []
        for cells in reader:
            row = {h: _value(c) for h, c in zip(header, cells, strict=False)}
            row["refcode"] = cells[0]
            rows.append(row)
    rows.sort(key=lambda r: r["refcode"])
    return ("refcode", *header[1:]), tuple(rows)


def columns(dataset: str) -> tuple[str, ...]:
    """Every column a filter can use: ``refcode``, the CSV's, and
    :data:`CIF_COLUMNS`."""
    return (*_csv(dataset)[0], *CIF_COLUMNS)


def table(dataset: str) -> list[dict]:
    """The CSV's rows, typed, in refcode order (``refcode``: the file name)."""
    return [dict(r) for r in _csv(dataset)[1]]


def _column(name: str, known: Iterable[str]) -> str:
    """The column ``name`` names (case-insensitive), or ValueError listing them."""
    known = list(known)
    for col in known:
        if col.lower() == name.lower():
            return col
    raise ValueError(f"unknown column {name!r}; columns: {', '.join(known)}")


def check_filter(dataset: str, spec: dict) -> dict:
    """The filter with canonical column names; unknown columns and operators
    raise ValueError naming them."""
    out = {}
    for name, cond in spec.items():
        col = _column(name, columns(dataset))
        if isinstance(cond, dict):
            bad = [op for op in cond if op not in OPERATORS]
            if bad:
                raise ValueError(
                    f"{name}: unknown operator {bad[0]!r}; use {', '.join(OPERATORS)}"
                )
        out[col] = cond
    return out


def _test(value: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return value == arg
    if op == "$ne":
        return value != arg
    if op == "$in":
        return value in arg
    if op == "$nin":
        return value not in arg
    if op == "$regex":
        return isinstance(value, str) and re.search(arg, value) is not None
    if value is None or isinstance(value, (str, bool)):
        return False  # no order on blanks, text or flags
    return {
        "$gt": value > arg,
        "$gte": value >= arg,
        "$lt": value < arg,
        "$lte": value <= arg,
    }[op]


def matches(row: dict, spec: dict) -> bool:
    """Whether ``row`` passes ``spec``: ``{column: value}`` (equality; a list:
    any of) or ``{column: {"$gt": x, ...}}`` (all of the operators)."""
    for col, cond in spec.items():
        value = row.get(col)
        if isinstance(cond, dict):
            if not all(_test(value, op, arg) for op, arg in cond.items()):
                return False
        elif isinstance(cond, list):
            if value not in cond:
                return False
        elif value != cond:
            return False
    return True


def select(
    dataset: str,
    spec: dict | None = None,
    limit: int | None = None,
) -> list[dict]:
    """The rows of ``dataset`` that pass the filter ``spec``, by refcode.

    Parameters
    ----------
    dataset : str
        One of :data:`DATASETS`.
    spec : dict, optional
        Column conditions (see :func:`matches`); column names are matched
        case-insensitively.  A condition on :data:`CIF_COLUMNS` reads them
        from the CIFs once per data set (a few seconds), then from the cache.
    limit : int, optional
        At most this many rows (the first by refcode).
    """
    spec = check_filter(dataset, spec or {})
    rows = table(dataset)
    if any(col in CIF_COLUMNS for col in spec):
        cells = _cif_columns(dataset)
        for row in rows:
            row.update(cells.get(row["refcode"], dict.fromkeys(CIF_COLUMNS)))
    out = [r for r in rows if matches(r, spec)]
    return out[:limit] if limit is not None else out


def _folder(dataset: str) -> Path:
    version = getattr(require(), "__version__", None) or _package_version()
    return cache_dir() / version / dataset


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("core-mof")
    except PackageNotFoundError:
        return "unknown"


def _members(dataset: str):
    """``(refcode, CIF text)`` of every CIF in the archive, in archive order."""
    with tarfile.open(_data(dataset, ".tar.xz")) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name.endswith(".cif") and not name[0] == ".":
                text = tar.extractfile(member).read().decode("utf-8", "replace")
                yield name.removesuffix(".cif"), text


def _write(path: Path, text: str) -> None:
    """Write atomically (a concurrent reader sees the whole file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def cif_paths(dataset: str, refcodes: Iterable[str]) -> dict[str, Path]:
    """The cached CIF of each refcode, extracting those not cached yet in one
    pass over the archive.

    Raises
    ------
    KeyError
        Naming refcodes the data set does not have.
    """
    folder = _folder(dataset) / "cifs"
    paths = {r: folder / f"{r}.cif" for r in refcodes}
    missing = {r for r, p in paths.items() if not p.is_file()}
    if missing:
        for refcode, text in _members(dataset):
            if refcode in missing:
                _write(paths[refcode], text)
                missing.discard(refcode)
                if not missing:
                    break
    if missing:
        raise KeyError(f"not in CoRE MOF {dataset}: {', '.join(sorted(missing))}")
    return paths


def _cell(text: str) -> dict:
    """:data:`CIF_COLUMNS` of a CIF from its text (P1 cells; None otherwise)."""
    cell, n_atoms, in_atoms, p1 = {}, 0, False, True
    for line in text.splitlines():
        line = line.strip()
        match = _CELL.match(line)
        if match:
            cell[match[1]] = float(match[2].split("(")[0])
        elif line.startswith("_symmetry_space_group_name_H-M") or line.startswith(
            "_space_group_name_H-M_alt"
        ):
            p1 = line.split(None, 1)[1].strip("'\" ").replace(" ", "") == "P1"
        elif line.startswith("_atom_site_fract_x"):
            in_atoms = True
        elif in_atoms and line and not line.startswith(("_", "loop_", "#")):
            n_atoms += 1
        elif in_atoms and line.startswith("loop_"):
            in_atoms = False
    if len(cell) < 6 or not p1:
        return dict.fromkeys(CIF_COLUMNS)
    lengths = [cell[f"length_{x}"] for x in "abc"]
    cosines = np.cos(
        np.radians([cell[f"angle_{x}"] for x in ("alpha", "beta", "gamma")])
    )
    volume = float(
        np.prod(lengths)
        * np.sqrt(max(1 - (cosines**2).sum() + 2 * np.prod(cosines), 0.0))
    )
    reps = np.prod(repeats(lengths))
    return {
        "n_atoms": n_atoms,
        "a": lengths[0],
        "b": lengths[1],
        "c": lengths[2],
        "volume": round(volume, 3),
        "supercell_atoms": int(n_atoms * reps),
    }


def _cif_columns(dataset: str) -> dict[str, dict]:
    """:data:`CIF_COLUMNS` of every entry, read once and cached as a CSV."""
    path = _folder(dataset) / "cif_columns.csv"
    if not path.is_file():
        lines = [",".join(("refcode", *CIF_COLUMNS))]
        for refcode, text in _members(dataset):
            values = _cell(text)
            lines.append(
                ",".join(
                    [
                        refcode,
                        *(
                            "" if values[c] is None else str(values[c])
                            for c in CIF_COLUMNS
                        ),
                    ]
                )
            )
        _write(path, "\n".join(lines) + "\n")
    with path.open(newline="") as f:
        return {
            row["refcode"]: {c: _value(row[c]) for c in CIF_COLUMNS}
            for row in csv.DictReader(f)
        }
