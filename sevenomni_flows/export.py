"""Structures of stored results, written to files (``sevenomni export``).

Each structure-typed field of each selected document (see
:func:`~sevenomni_flows.reader.structure_fields`) becomes a file named
``<label>_<property>_<field>``: the relaxed cell (``structure``), the cell a
property was computed on (``input_structure``), the relaxed adsorbate
configurations (``relaxed_structures``), the relaxed slabs of surface
energies (``relaxed_slabs``), NEB images (``images``) and Widom's top poses
(``top_geometries``).  A list goes in one file (extxyz frames, a JSON list)
or in numbered files (``_000``, ... for CIF and POSCAR).  Where two
documents would share a name (same label and property, different
settings), their reuse key's first 8 characters are added.  Each file
carries the document's reuse key: in the extxyz comment line, a CIF
comment, the POSCAR comment line, or a JSON field.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["FORMATS", "export_structures", "safe_name"]

#: File suffix of each format.
FORMATS: Final[dict[str, str]] = {
    "extxyz": ".extxyz",
    "cif": ".cif",
    "poscar": ".vasp",
    "json": ".json",
}


def safe_name(text: str) -> str:
    """``text`` as a portable file name part: letters, digits, ``.+-=``
    kept, every other run of characters one ``_``.

    >>> safe_name("structures.extxyz[17]")
    'structures.extxyz_17'
    >>> safe_name("Cu hop / vacancy")
    'Cu_hop_vacancy'
    """
    return re.sub(r"[^\w.+=-]+", "_", text).strip("._") or "result"


def _metadata(result, field: str, index: int | None) -> dict:
    model = result.get("model") or {}
    meta = {
        "key": result.key,
        "label": result.get("label"),
        "property": result.get("property"),
        "formula": result.get("formula"),
        "field": field,
        "model": model.get("name"),
        "task": model.get("task"),
        "job_uuid": result.get("job_uuid"),
    }
    if index is not None:
        meta["index"] = index
    return {k: v for k, v in meta.items() if v is not None}


def _write(path: Path, structures: list, metas: list[dict], fmt: str, many: bool):
    """One file of ``structures`` (several only for extxyz and JSON; a JSON
    file holds a list where ``many``)."""
    if fmt == "json":
        items = [
            {**meta, "structure": s.as_dict()}
            for s, meta in zip(structures, metas, strict=True)
        ]
        path.write_text(json.dumps(items if many else items[0], indent=1))
        return
    if fmt == "extxyz":
        import ase.io
        from pymatgen.io.ase import AseAtomsAdaptor

        frames = []
        for s, meta in zip(structures, metas, strict=True):
            atoms = AseAtomsAdaptor.get_atoms(s)
            atoms.info = dict(meta)  # flat strings: they round-trip
            for name, values in list(atoms.arrays.items()):
                if values.dtype.kind in "OUS" and any(v in (None, "") for v in values):
                    del atoms.arrays[name]  # e.g. no bulk Wyckoff site for H
            frames.append(atoms)
        ase.io.write(path, frames, format="extxyz")
        return
    (structure,), (meta,) = structures, metas
    said = " ".join(f"{k}={v}" for k, v in meta.items())
    if fmt == "cif":
        from pymatgen.io.cif import CifWriter

        path.write_text(f"# sevenomni {said}\n{CifWriter(structure)}")
    else:
        from pymatgen.io.vasp import Poscar

        Poscar(structure, comment=f"{structure.formula} {said}").write_file(path)


def export_structures(results: Iterable, folder, fmt: str = "extxyz") -> list[Path]:
    """Write the structures of ``results`` under ``folder``; returns the
    paths written.

    Parameters
    ----------
    results : iterable of Result
        From :meth:`~sevenomni_flows.reader.Results.find`.
    folder : path
        Created if missing; files of the same names are replaced.
    fmt : str
        ``extxyz`` (default), ``cif``, ``poscar`` or ``json``.

    Raises
    ------
    ValueError
        For a format not in :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    folder = Path(folder)
    results = list(results)
    bases = [
        f"{safe_name(str(r.get('label') or r.get('formula')))}_{r.get('property')}"
        for r in results
    ]
    shared = Counter(bases)
    written = []
    for result, base in zip(results, bases, strict=True):
        if shared[base] > 1:
            base += f"_{(result.key or '')[:8]}"
        for field, structures in result.structures().items():
            several = len(structures) > 1 or field not in (
                "structure",
                "input_structure",
            )
            stem = f"{base}_{field}"
            kept = [(i, s) for i, s in enumerate(structures) if s is not None]
            metas = [_metadata(result, field, i if several else None) for i, _ in kept]
            if fmt in ("extxyz", "json"):
                groups = [(stem, kept, metas)]
            else:
                groups = [
                    (f"{stem}_{i:03d}" if several else stem, [(i, s)], [meta])
                    for (i, s), meta in zip(kept, metas, strict=True)
                ]
            folder.mkdir(parents=True, exist_ok=True)
            for name, items, meta in groups:
                path = folder / f"{name}{FORMATS[fmt]}"
                _write(path, [s for _, s in items], meta, fmt, several)
                written.append(path)
    return written
