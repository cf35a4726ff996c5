"""The frameworks a spec names: CIF files, globs of them, CoRE MOF entries.

Each entry of ``frameworks:`` becomes one :class:`Framework` per CIF, with
its label, the path the jobs read, where it came from, and the pore-limiting
diameter when known (CoRE MOF's Zeo++ ``PLD``, or an entry's ``pld``).  An
entry that names nothing (a glob matching no file, a filter matching no
CoRE MOF entry) gives one framework with its error, so that it fails alone.
"""

from __future__ import annotations

import glob as globlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from ..adsorption import core_mof
from ..adsorption.pores import blocked_guests
from ..schemas import Provenance
from ..spec import FRAMEWORK_PROPERTIES
from .inputs import input_failure

__all__ = [
    "PORE_BLOCKED",
    "Framework",
    "FrameworkGroup",
    "FrameworkPlan",
    "plan_frameworks",
    "read_frameworks",
]


class Framework(NamedTuple):
    """One framework of a spec.

    Attributes
    ----------
    label : str
        Its name in tables: the entry's ``name``, the file's stem, or the
        CoRE MOF refcode.
    path : str
        The CIF the jobs read ('' with ``error``).
    source : str
        Where it came from: the path as written, or ``core-mof 2019-ASR
        REFCODE``.
    pld : float or None
        Pore-limiting diameter, Å (None: not known).
    pld_source : str
        Where ``pld`` comes from.
    guests : list of str
        The entry's guests (the ``mof`` property's).
    entry : int
        Index of its entry in ``frameworks:``.
    error : str or None
        Why the entry gave no framework.
    """

    label: str
    path: str
    source: str
    pld: float | None
    pld_source: str
    guests: list[str]
    entry: int
    error: str | None = None


def read_frameworks(entries: list, base: Path) -> list:
    """One :class:`Framework` per CIF of the spec's ``frameworks:`` entries.

    Parameters
    ----------
    entries : list of FrameworkEntry
        The spec's entries (validated).
    base : Path
        The folder file and glob paths are relative to.
    """
    out: list[Framework] = []
    for i, entry in enumerate(entries):
        given = "the spec's pld"
        if entry.file is not None:
            label = entry.name or Path(entry.file).stem
            out.append(
                Framework(
                    label,
                    str(base / entry.file),
                    entry.file,
                    entry.pld,
                    given,
                    entry.guests,
                    i,
                )
            )
        elif entry.glob is not None:
            out += _glob(entry, i, base)
        else:
            out += _core_mof(entry, i)
    return out


def _glob(entry, i: int, base: Path) -> list[Framework]:
    files = sorted(globlib.glob(str(base / entry.glob)))
    if not files:
        why = f"no files match {entry.glob}"
        return [Framework(entry.glob, "", entry.glob, None, "", entry.guests, i, why)]
    stems = [Path(f).stem for f in files]
    unique = len(set(stems)) == len(stems)
    return [
        Framework(
            stem if unique else os.path.splitext(os.path.relpath(f, base))[0],
            f,
            os.path.relpath(f, base),
            entry.pld,
            "the spec's pld",
            entry.guests,
            i,
        )
        for f, stem in zip(files, stems, strict=True)
    ]


def _core_mof(entry, i: int) -> list[Framework]:
    rows = core_mof.select(entry.core_mof, entry.filter, entry.limit)
    where = f"core-mof {entry.core_mof}"
    if not rows:
        why = f"{where}: no entry matches the filter {entry.filter}"
        return [Framework(where, "", where, None, "", entry.guests, i, why)]
    paths = core_mof.cif_paths(entry.core_mof, [r["refcode"] for r in rows])
    return [
        Framework(
            r["refcode"],
            str(paths[r["refcode"]]),
            f"{where} {r['refcode']}",
            r.get("PLD"),
            f"CoRE MOF {entry.core_mof} PLD",
            entry.guests,
            i,
        )
        for r in rows
    ]


#: The error type of a guest too large for a framework's pore windows.
PORE_BLOCKED = "PoreBlocked"


@dataclass
class FrameworkGroup:
    """Frameworks that one Maker computes (same property and guests): their
    CIFs, labels and reuse keys, one entry each."""

    maker: Any
    paths: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)

    def jobs(self, done: Callable[[list[str]], bool], per_job: int | None) -> list:
        """Batched jobs over the frameworks not ``done``, ``per_job`` at most
        in each (default: all in one)."""
        todo = [i for i, keys in enumerate(self.keys) if not done(keys)]
        size = per_job or max(len(todo), 1)
        return [
            self.maker.make(
                [self.paths[i] for i in todo[s : s + size]],
                [self.labels[i] for i in todo[s : s + size]],
            )
            for s in range(0, len(todo), size)
        ]


@dataclass
class FrameworkPlan:
    """The framework calculations of a spec at one task.

    Attributes
    ----------
    frameworks : list of Framework
        Every framework the entries name.
    groups : dict
        ``(property, guests) -> FrameworkGroup``: one batched job (or one
        per ``structures_per_job``) each.
    failures : list
        Failed documents made in planning: unreadable frameworks (one
        ``input`` document each) and pore-blocked guests (one document of
        the property each, error type :data:`PORE_BLOCKED`).
    planned : dict
        Reuse key -> ``(label, property)`` of every framework calculation.
    """

    frameworks: list[Framework]
    groups: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    planned: dict = field(default_factory=dict)

    @property
    def readable(self) -> list[str]:
        """Labels of the frameworks that read."""
        bad = {d.label for d in self.failures if d.property == "input"}
        return [f.label for f in self.frameworks if f.label not in bad]

    def jobs(self, done, per_job: int | None) -> list:
        """The jobs of every group (see :meth:`FrameworkGroup.jobs`)."""
        return [job for g in self.groups.values() for job in g.jobs(done, per_job)]


def _guest(target) -> str | None:
    item = target.protocol.get("item") or {}
    return item.get("guest") or item.get("adsorbate")


def plan_frameworks(spec, base: Path, settings, pot, task, plots: str):
    """The framework calculations of ``spec`` on one model and task.

    Each framework is read once per property (a framework that cannot be
    read fails alone, as an ``input`` document).  A guest whose kinetic
    diameter exceeds the framework's pore-limiting diameter gets a failed
    document (:data:`PORE_BLOCKED`); the others are computed.  Frameworks
    with the same property and guests share one Maker, so their jobs batch
    across frameworks.
    """
    provenance = Provenance.from_potential(pot, task)
    out = FrameworkPlan(read_frameworks(spec.frameworks, base))
    for fw in out.frameworks:
        if fw.error is not None:
            out.failures.append(
                input_failure(fw.label, fw.error, provenance, fw.source)
            )
            continue
        for prop in spec.framework_properties:
            name = FRAMEWORK_PROPERTIES[prop]
            guests = {"guests": fw.guests} if name == "mof" else {}
            maker = spec.maker(name, plot_dir=plots, settings=settings, **guests)
            item = maker.resolve(fw.path, fw.label)
            if item.error:
                out.failures.append(
                    input_failure(fw.label, item.error, provenance, fw.source)
                )
                break
            blocked = blocked_guests(maker.guests, fw.pld, fw.pld_source)
            for target in maker.targets(item, pot, task):
                why = blocked.get(_guest(target))
                if why is not None and target.key not in out.planned:
                    out.failures.append(
                        maker.document.failed(
                            target.fields(),
                            provenance,
                            f"{fw.label}: {why}",
                            error_type=PORE_BLOCKED,
                            labels=[fw.label],
                            sources=[fw.source],
                        )
                    )
            fits = [g for g in maker.guests if g not in blocked]
            if not fits:
                continue
            if blocked:
                maker = replace(maker, guests=fits)
            keys = [t.key for t in maker.targets(item, pot, task)]
            if all(k in out.planned for k in keys):
                continue  # the same framework named twice: computed once
            # computed here, so not pore-blocked (the same CIF given a smaller pld)
            out.failures = [d for d in out.failures if d.key not in keys]
            group = out.groups.setdefault((prop, tuple(fits)), FrameworkGroup(maker))
            group.paths.append(fw.path)
            group.labels.append(fw.label)
            group.keys.append(keys)
            out.planned.update({k: (fw.label, prop) for k in keys})
    out.planned.update({d.key: (d.label, d.property) for d in out.failures})
    return out
