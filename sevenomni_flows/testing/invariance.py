"""Same crystal, same answer: run a property on several representations of
one material and compare every result field.

An :class:`Entry` says, for one registered property, which representations
apply and how each field of its document compares (:class:`Field`): an
intensive value as is, a per-cell value per atom, a tensor after rotating it
back, per-facet values facet by facet.  Fields that cannot compare (inputs,
optimiser step counts, values of a cell the Maker chose) are listed with
why.  :func:`check` runs the Maker once on every representation, in one
batch, and returns a :class:`Report`: the worst difference of each field
over the representations beside its tolerance.

>>> from sevenomni_flows.testing import ENTRIES, check
>>> report = check(ENTRIES["static"])  # doctest: +SKIP
>>> report.assert_invariant()  # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from ..jobs.base import as_structure
from .representations import Representation, representations

__all__ = ["KINDS", "Entry", "Field", "Report", "Row", "check", "compare", "inputs"]

#: How a field compares (see :class:`Field`).
KINDS = (
    "intensive",
    "per_atom",
    "stress",
    "tensor",
    "elastic",
    "norms",
    "facets",
    "same",
    "structure",
    "sigma",
)


@dataclass(frozen=True)
class Field:
    """How one document field compares across representations.

    Parameters
    ----------
    kind : str
        ``intensive``: the value (a number or a list, e.g. over temperature)
        as is; ``per_atom``: a value of the whole input cell, divided by its
        atoms; ``stress``: a Voigt stress (xx yy zz yz xz xy) rotated back;
        ``tensor``: a 3x3 tensor (or a list of them) rotated back, relative
        to its largest component with ``relative``;
        ``elastic``: a 6x6 Voigt stiffness rotated back through its rank-4
        form; ``norms``: per-atom vectors (forces) by their sorted norms, one
        per atom of the reference; ``facets``: a dict per facet, keys mapped
        back; ``same``: equal (booleans, names); ``structure``: the same
        crystal by pymatgen's StructureMatcher; ``sigma``: the difference in
        combined standard errors (stochastic results, see ``error``).
    tol : float
        The largest difference allowed (in the field's unit, per atom for
        ``per_atom``; relative with ``relative``; in sigmas for ``sigma``).
    why : str
        Where the tolerance comes from.
    relative : bool
        ``tol`` is relative to the reference's magnitude.
    error : str, optional
        ``sigma``: the field holding each value's standard error.
    """

    kind: str
    tol: float
    why: str
    relative: bool = False
    error: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}; choose from {KINDS}")
        if self.kind == "sigma" and not self.error:
            raise ValueError("a 'sigma' field names its standard-error field")


@dataclass(frozen=True)
class Entry:
    """The invariance check of one registered property.

    Parameters
    ----------
    section : str
        The registry's name of the property (its spec section).
    fields : dict
        Field name -> :class:`Field`, for every compared field.
    skip : dict
        Field name -> why it is not compared; with ``fields`` it covers every
        field of the property's document.
    representations : tuple of str
        Representations compared with the reference (see
        :data:`~sevenomni_flows.testing.representations.REPRESENTATIONS`).
    maker : callable
        The Maker with cheap settings, giving one document per input.
    material : callable
        The default reference input: a structure (material and framework
        stages) or a band description (band stage).
    extra : tuple of Representation
        Representations of its own (an equivalent Miller index).
    slow : bool
        Too expensive for the default test run.
    together : bool
        Whether the representations run in one batch (not for a property of
        the set, such as a convex hull, where they would meet).
    """

    section: str
    fields: dict[str, Field]
    skip: dict[str, str]
    representations: tuple[str, ...]
    maker: Callable[[], Any]
    material: Callable[[], Any]
    extra: tuple[Representation, ...] = ()
    slow: bool = True
    together: bool = True

    def all_representations(self, seed: int = 0) -> list[Representation]:
        """The reference first, then the others."""
        return representations(("reference", *self.representations), seed) + list(
            self.extra
        )


@dataclass(frozen=True)
class Row:
    """The worst difference of one field over the representations."""

    field: str
    kind: str
    worst: float
    tol: float
    representation: str
    relative: bool = False

    @property
    def ok(self) -> bool:
        return self.worst <= self.tol


@dataclass
class Report:
    """What :func:`check` measured for one property."""

    section: str
    representations: list[str]
    rows: list[Row]
    seconds: float = 0.0
    values: dict = field(default_factory=dict)

    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def assert_invariant(self) -> None:
        """Raise AssertionError naming every field beyond its tolerance."""
        bad = self.failures()
        if bad:
            lines = [
                f"{r.field} ({r.kind}): {r.worst:.3g} > {r.tol:.3g}"
                f"{' (relative)' if r.relative else ''} on the {r.representation}"
                for r in bad
            ]
            raise AssertionError(
                f"{self.section} differs between representations:\n  "
                + "\n  ".join(lines)
            )

    def table(self) -> str:
        """A Markdown table: field, kind, worst difference, tolerance."""
        out = [
            "| field | kind | worst difference | tolerance | on |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            rel = " (rel.)" if r.relative else ""
            out.append(
                f"| {r.field} | {r.kind} | {r.worst:.3g} | {r.tol:.3g}{rel} "
                f"| {r.representation} |"
            )
        return "\n".join(out)


def inputs(entry: Entry, material: Any, stage: str, folder: Path | None = None):
    """The Maker input of each representation of ``material``: a structure,
    a band with both end points transformed, or a framework CIF file."""
    reps = entry.all_representations()
    out = []
    for rep in reps:
        if stage == "band":
            band = dict(material)
            for end in ("initial", "final"):
                band[end] = rep.build(as_structure(material[end]))
            out.append(band)
        elif stage == "framework":
            folder = folder or Path(tempfile.mkdtemp(prefix="invariance"))
            path = folder / f"{rep.name.replace(' ', '_')}.cif"
            rep.build(as_structure(material)).to(filename=str(path))
            out.append(str(path))
        else:
            out.append(rep.build(as_structure(material)))
    return reps, out


def _n_atoms(doc: Any, given: Any) -> int:
    """Atoms of the cell a per-cell value is of: the input's."""
    if getattr(doc, "input_structure", None) is not None:
        return len(doc.input_structure)
    if isinstance(given, dict):
        return len(as_structure(given["initial"]))
    if isinstance(given, str):
        return len(Structure.from_file(given))
    return len(as_structure(given))


def _matrix(voigt: Any) -> np.ndarray:
    """A symmetric 3x3 tensor from Voigt xx yy zz yz xz xy."""
    xx, yy, zz, yz, xz, xy = np.asarray(voigt, dtype=float)
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def _rotate_back(kind: str, value: Any, rot: np.ndarray | None) -> np.ndarray:
    """A tensor of a representation in the reference's frame: Rᵀ T R."""
    if rot is None:
        raise ValueError(f"a {kind} field needs the representation's rotation")
    if kind == "elastic":
        return ElasticTensor.from_voigt(np.asarray(value)).rotate(rot.T).voigt
    if kind == "stress":
        value = _matrix(value)
    return rot.T @ np.asarray(value, dtype=float) @ rot


def compare(
    fld: Field,
    name: str,
    ref: Any,
    other: Any,
    rep: Representation,
    n_ref: int,
    n_other: int,
) -> float:
    """The difference of field ``name`` between the reference document
    ``ref`` and ``other`` (from ``rep``), in the units of ``fld.tol``."""
    a, b = getattr(ref, name), getattr(other, name)
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    kind = fld.kind
    if kind == "same":
        return 0.0 if a == b else math.inf
    if kind == "structure":
        matcher = StructureMatcher(primitive_cell=True, scale=False)
        return 0.0 if matcher.fit(as_structure(a), as_structure(b)) else math.inf
    if kind == "sigma":
        ea, eb = getattr(ref, fld.error), getattr(other, fld.error)
        sigma = np.hypot(np.asarray(ea, float), np.asarray(eb, float))
        return _worst(np.asarray(a, float), np.asarray(b, float), False, sigma)
    if kind == "facets":
        b = {rep.rename.get(k, k): v for k, v in b.items()}
        if set(a) != set(b):
            return math.inf
        keys = sorted(a)
        a, b = [a[k] for k in keys], [b[k] for k in keys]
    elif kind == "per_atom":
        a, b = np.asarray(a, float) / n_ref, np.asarray(b, float) / n_other
    elif kind in ("stress", "tensor", "elastic"):
        a = np.asarray(_matrix(a) if kind == "stress" else a, dtype=float)
        b = _rotate_back(kind, b, rep.rotation)
        if fld.relative:  # relative to each tensor's largest component
            scale = np.abs(a).max(axis=(-2, -1), keepdims=True)
            return _worst(a, b, False, np.broadcast_to(scale, a.shape))
    elif kind == "norms":
        na = np.sort(np.linalg.norm(np.asarray(a, float), axis=-1))
        nb = np.sort(np.linalg.norm(np.asarray(b, float), axis=-1))
        if len(nb) % len(na):
            return math.inf
        a, b = na, nb.reshape(len(na), -1).mean(axis=1)
    return _worst(np.asarray(a, float), np.asarray(b, float), fld.relative)


def _worst(a: np.ndarray, b: np.ndarray, relative: bool, scale=None) -> float:
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    diff = np.abs(a - b)
    if scale is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where(scale > 0, diff / scale, np.where(diff > 0, np.inf, 0.0))
    elif relative:
        diff = diff / np.maximum(np.abs(a), 1e-300)
    worst = np.nanmax(diff) if not np.isnan(diff).all() else 0.0
    if np.isnan(a).any() != np.isnan(b).any():
        return math.inf
    return float(worst)


def check(
    entry: Entry,
    material: Any = None,
    maker: Any = None,
    folder: Path | None = None,
) -> Report:
    """Run ``entry``'s property on every representation of ``material``.

    Parameters
    ----------
    entry : Entry
        The property's invariance entry (see :data:`ENTRIES`).
    material : optional
        The reference input (default: the entry's cheap material).
    maker : PropertyMaker, optional
        The Maker to run (default: the entry's cheap settings).
    folder : Path, optional
        Where frameworks are written as CIF files (default: a temporary one).

    Returns
    -------
    Report
        The worst difference of every compared field; raises AssertionError
        when a representation gives no completed document.
    """
    material = entry.material() if material is None else material
    maker = entry.maker() if maker is None else maker
    reps, given = inputs(entry, material, maker.stage, folder)
    start = time.perf_counter()
    docs: list = [None] * len(reps)
    groups: dict[str, list[int]] = {}
    for i, rep in enumerate(reps):
        group = repr(sorted(rep.settings.items())) if entry.together else str(i)
        groups.setdefault(group, []).append(i)
    for members in groups.values():
        settings = reps[members[0]].settings
        runner = replace(maker, **settings) if settings else maker
        todo = [given[i] for i in members]
        extra = runner.extra_inputs(todo) if maker.stage == "material" else []
        made = runner.run(
            todo + [s for _, s in extra],
            [reps[i].name for i in members] + [label for label, _ in extra],
        )
        if len(made) != len(members):
            raise AssertionError(
                f"{entry.section}: {len(made)} documents for {len(members)} "
                "inputs; the harness needs one document per input"
            )
        for i, doc in zip(members, made, strict=True):
            docs[i] = doc
    seconds = time.perf_counter() - start
    for rep, doc in zip(reps, docs, strict=True):
        if doc.state != "completed":
            raise AssertionError(
                f"{entry.section} on the {rep.name}: {doc.state}: {doc.error}"
            )
    ref = docs[0]
    n_ref = _n_atoms(ref, given[0])
    rows = []
    for name, fld in entry.fields.items():
        worst, where = 0.0, "-"
        for rep, doc, g in zip(reps[1:], docs[1:], given[1:], strict=True):
            diff = compare(fld, name, ref, doc, rep, n_ref, _n_atoms(doc, g))
            if diff > worst or where == "-":
                worst, where = diff, rep.name
        rows.append(Row(name, fld.kind, worst, fld.tol, where, fld.relative))
    values = {rep.name: doc for rep, doc in zip(reps, docs, strict=True)}
    return Report(entry.section, [r.name for r in reps], rows, seconds, values)
