"""Thermodynamic stability: formation energy and energy above the convex hull.

The hull is a property of the whole screened set, not of one material: it
is built from every relaxed material of the screening, the elemental
references (:mod:`.elements`, relaxed with the same model, task and
settings, and stored and reused like any relaxation), and optionally the
entries of a ``hull_entries`` file.  So the screening gives this property
one job over all materials (``aggregate``), and its reuse key covers the
set (``hull``): adding a material recomputes every material's hull, which
is one batched static pass and pymatgen's ``PhaseDiagram``.

Energies are static energies of the relaxed structures, evaluated in one
batch.  Each material's hull is built in its own chemical system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from monty.serialization import loadfn
from pydantic import Field
from pymatgen.io.ase import AseAtomsAdaptor

from ...jobs.base import Item, Target, maker_settings, protocol
from ...jobs.calculation import PropertyMaker, model_title
from ...jobs.plots import save_figure
from ...schemas import ResultDocument, quantity
from .elements import SOURCE, references

if TYPE_CHECKING:
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

__all__ = [
    "MP2020_TASKS",
    "StabilityDocument",
    "StabilityMaker",
    "hull_figure",
    "lowest_elements",
    "mp2020",
    "read_entries",
]

#: Tasks trained on the Materials Project's PBE/PBE+U mixing (MPtrj, MPA,
#: OMat24), the energies the MP2020 corrections were fitted to; None is a
#: single-task model trained on MPtrj (7net-0, 7net-l3i5).
MP2020_TASKS = (None, "pbe", "mpa", "omat24")


def mp2020(entries: list[ComputedStructureEntry]) -> dict[int, str]:
    """Apply the MP2020 corrections in place; the reason for each entry
    (by index) that they do not cover.

    Each entry is labelled as MP would run it: GGA+U with MP's U values for
    oxides and fluorides of Co, Cr, Fe, Mn, Mo, Ni, V and W, else GGA.
    """
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
    from pymatgen.io.vasp.sets import MPRelaxSet

    values = MPRelaxSet.CONFIG["INCAR"]["LDAUU"]
    compat = MaterialsProject2020Compatibility(check_potcar=False)
    refused = {}
    for i, entry in enumerate(entries):
        symbols = {el.symbol for el in entry.composition}
        anion = "F" if "F" in symbols else "O" if "O" in symbols else None
        u = values[anion] if anion else {}
        hubbards = {el: u[el] for el in sorted(symbols) if el in u}
        entry.parameters = {
            "run_type": "GGA+U" if hubbards else "GGA",
            "hubbards": hubbards,
        }
        try:
            done = compat.process_entry(entry)
        except Exception as err:  # pymatgen refuses what it cannot correct
            done, why = None, str(err)
        else:
            why = "MP2020 does not cover this composition"
        if done is None:
            refused[i] = why
    return refused


def lowest_elements(entries: list[ComputedEntry]) -> dict[str, ComputedEntry]:
    """The lowest-energy elemental entry of each element among ``entries``."""
    out: dict[str, ComputedEntry] = {}
    for e in entries:
        if e.composition.is_element:
            el = e.composition.elements[0].symbol
            if el not in out or e.energy_per_atom < out[el].energy_per_atom:
                out[el] = e
    return out


def read_entries(path: Path, key: str) -> list[ComputedEntry]:
    """The pymatgen entries of a ``hull_entries`` file (``key``: its spec
    key, for messages).

    Raises
    ------
    ValueError
        Naming the file, when it cannot be read or is not a list of
        ``ComputedEntry`` / ``ComputedStructureEntry`` objects.
    """
    from pymatgen.entries.computed_entries import ComputedEntry

    try:
        entries = loadfn(path)
    except Exception as err:  # any unreadable file
        raise ValueError(f"{key}: cannot read {path}: {err}") from None
    entries = entries if isinstance(entries, list) else [entries]
    bad = [type(e).__name__ for e in entries if not isinstance(e, ComputedEntry)]
    if bad:
        raise ValueError(
            f"{key}: {path} must hold a list of pymatgen "
            f"ComputedEntry or ComputedStructureEntry objects, found {bad[0]}"
        )
    return entries


class StabilityDocument(ResultDocument):
    """Formation energy, energy above the hull and decomposition products."""

    property: str = "stability"
    columns: ClassVar[tuple[str, ...]] = (
        "formation_energy_per_atom",
        "e_above_hull",
        "hull_size",
    )
    energy_per_atom: float | None = quantity(
        "Static energy of the relaxed structure", "eV/atom"
    )
    formation_energy_per_atom: float | None = quantity(
        "Formation energy from the elemental references", "eV/atom"
    )
    e_above_hull: float | None = quantity("Energy above the convex hull", "eV/atom")
    decomposition: dict[str, float] = quantity(
        "Hull phases it decomposes to: reduced formula -> fraction (itself alone when "
        "on the hull)",
        "unitless",
        default_factory=dict,
    )
    references: dict[str, dict] = Field(
        default_factory=dict,
        description="The elemental entry of each element the hull used: its "
        "label and energy_per_atom (eV/atom)",
    )
    reference_source: str = Field(SOURCE, description="The shipped prototypes")
    hull_size: int | None = Field(
        None, description="Entries in its chemical system's hull"
    )
    corrections: str = Field("none", description="Energy corrections applied")
    correction_per_atom: float | None = quantity(
        "Energy correction added (MP2020)", "eV/atom"
    )


@dataclass
class StabilityMaker(PropertyMaker):
    """Formation energy and energy above the hull of every material of a set.

    Parameters
    ----------
    hull_entries : str or dict, optional
        A JSON file (monty) of pymatgen ``ComputedEntry`` or
        ``ComputedStructureEntry`` objects added to the hull, e.g. entries of
        the Materials Project.  Their energies must be on this model's scale
        at the task (same functional, same corrections): the file is read as
        is, so it belongs to one task.  A path serves a run at one task; a
        run at several tasks gives a mapping task -> path (a task left out
        gets none).  Checked when the run is planned: a path with several
        tasks, a task not in the run, or a file that is not a list of
        entries is refused, naming it.
    corrections : {"none", "mp2020"}
        ``mp2020``: pymatgen's ``MaterialsProject2020Compatibility`` (anion
        and +U corrections fitted to experimental formation enthalpies) on
        every computed energy; only for tasks trained on MP's PBE/PBE+U
        energies (:data:`MP2020_TASKS`), refused elsewhere.
    plot_dir : str, optional
        Folder for the phase-diagram PNG of binary and ternary materials.
    spec_dir : str, optional
        Folder a relative ``hull_entries`` is read from (the spec's).
    hull : dict
        Set by :meth:`over`: the digest of the set each task's hull is built
        from (part of that task's reuse keys).
    """

    name: str = "stability"
    hull_entries: str | dict[str, str] | None = None
    corrections: Literal["none", "mp2020"] = "none"
    plot_dir: str | None = None
    spec_dir: str | None = None
    hull: dict[str, str] = field(default_factory=dict)

    property: ClassVar[str] = "stability"
    document: ClassVar[type] = StabilityDocument
    stage: ClassVar[str] = "material"
    #: One job over every material of a screening (the hull is shared).
    aggregate: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True
    spec_exclude: ClassVar[tuple[str, ...]] = ("hull",)

    def entries_of(self, task: str | None) -> str | None:
        """The ``hull_entries`` file of ``task`` as given (None if none)."""
        given = self.hull_entries
        if isinstance(given, dict):
            mine = {k.lower(): v for k, v in given.items()}
            given = mine.get(str(task).lower())
        return given

    def entries_path(self, task: str | None) -> Path | None:
        """The ``hull_entries`` file of ``task``, relative to ``spec_dir``."""
        given = self.entries_of(task)
        if given is None:
            return None
        path = Path(given).expanduser()
        return path if path.is_absolute() else Path(self.spec_dir or ".") / path

    def check_tasks(self, tasks: list[str | None]) -> None:
        """Refuse ``hull_entries`` that do not give each file one task.

        Raises
        ------
        ValueError
            For one path in a run at several tasks, or a mapping naming a
            task the run does not compute at.
        """
        names = ", ".join(str(t) for t in tasks)
        if isinstance(self.hull_entries, str) and len(tasks) > 1:
            raise ValueError(
                f"{self.spec_key('hull_entries')}: one file for the tasks {names}; a "
                "file holds energies of one task (one functional), so give a "
                f"mapping task -> file, e.g. {{{tasks[0]}: entries.json}}"
            )
        if isinstance(self.hull_entries, dict):
            known = {str(t).lower() for t in tasks}
            stray = [k for k in self.hull_entries if k.lower() not in known]
            if stray:
                raise ValueError(
                    f"{self.spec_key('hull_entries')}: {', '.join(stray)} is not "
                    f"a task of this run (tasks: {names})"
                )

    def over(self, items: list[Item]) -> StabilityMaker:
        """This Maker with ``hull`` set to the digest of the set ``items`` at
        each task (their upstream keys, and the bytes of that task's
        ``hull_entries`` file): a task's hull is built from its own items
        and file only.  The planner calls it before any job runs, so bad
        ``hull_entries`` are refused then (see :meth:`check_tasks` and
        :func:`read_entries`)."""
        tasks = list(dict.fromkeys(it.task for it in items))
        self.check_tasks(tasks)
        hull = {}
        for task in tasks:
            digest = hashlib.sha256()
            for on in sorted({it.on for it in items if it.task == task}):
                digest.update(on.encode())
            path = self.entries_path(task)
            if path is not None:
                read_entries(path, self.spec_key("hull_entries"))
                digest.update(path.read_bytes())
            hull[str(task)] = digest.hexdigest()[:16]
        return replace(self, hull=hull)

    def extra_inputs(self, structures) -> list[tuple[str, object]]:
        """The elemental reference of every element of ``structures``."""
        return references(structures)

    def targets(self, item: Item, pot, task) -> list[Target]:
        """One document per material; none for the elemental references."""
        if item.role == "reference":
            return []
        settings = maker_settings(self)
        if isinstance(self.hull_entries, dict):  # the key holds this task's file
            settings["hull_entries"] = self.entries_of(task)
        hull = settings.pop("hull").get(str(task), "")
        proto = protocol(self.property, pot, task, settings, item.on, {"hull": hull})
        return [Target(item.formula, item.structure_id, item.label, proto)]

    def compute(self, items, targets, ctx):
        """Static energies of all items (of every task) in one batch, then
        each material's hull, from the entries of its own task."""
        from pymatgen.entries.computed_entries import ComputedStructureEntry

        from sevenomni_core.batch import predict

        atoms = [AseAtomsAdaptor.get_atoms(it.structure) for it in items]
        tasks = [it.task for it in items]
        preds = predict(atoms, model=ctx.pot, task=tasks) if atoms else []
        entries: dict = {}
        for task in dict.fromkeys(tasks):
            path = self.entries_path(task)
            key = self.spec_key("hull_entries")
            entries[task] = read_entries(path, key) if path is not None else []
        why: dict[int, str] = {}
        mine = {}
        for i, (it, pred) in enumerate(zip(items, preds, strict=True)):
            if pred.ok:
                mine[i] = ComputedStructureEntry(
                    it.structure, float(pred.energy), entry_id=it.label
                )
            else:
                why[i] = pred.error
        if self.corrections == "mp2020":
            for task in entries:
                refusal = self.refusal(ctx.at(task))
                here = [i for i in mine if items[i].task == task]
                if refusal:
                    why.update(dict.fromkeys(here, refusal))
                    continue
                refused = mp2020([mine[i] for i in here])
                why.update({here[k]: reason for k, reason in refused.items()})
        for i, entry in mine.items():
            if i not in why:
                entries[items[i].task].append(entry)
        by_task = {t: (es, lowest_elements(es)) for t, es in entries.items()}
        diagrams: dict[tuple, PhaseDiagram] = {}
        out = []
        for i, (it, owed) in enumerate(zip(items, targets, strict=True)):
            if not owed:
                out.append([])
            elif i in why:
                out.append([self.failed(t, ctx, why[i]) for t in owed])
            else:
                try:
                    out.append(
                        [
                            self._finish(
                                mine[i], owed[0], ctx.at(it.task), by_task, diagrams
                            )
                        ]
                    )
                except Exception as err:  # one material's hull fails alone
                    out.append(err)
        return out

    def refusal(self, ctx) -> str | None:
        """Why MP2020 does not apply at ctx's task (not trained on MP's
        PBE/PBE+U energies, or with D3), or None."""
        from sevenomni_core.dispersion import functional_for_task

        task = None if ctx.task is None else ctx.task.lower()
        if task not in MP2020_TASKS or ctx.pot.dispersion is not None:
            return (
                f"{self.spec_key('corrections')}: mp2020 was fitted to the Materials "
                f"Project's PBE/PBE+U energies without dispersion; task "
                f"{ctx.task!r}"
                + (" with D3" if ctx.pot.dispersion is not None else "")
                + f" ({functional_for_task(ctx.task, force=True)}) is not on that "
                "scale. Use corrections: none, or a PBE task (7net-0, 7net-mf-0 "
                "PBE, 7net-omni mpa or omat24)"
            )
        return None

    def _finish(self, entry, target, ctx, by_task, diagrams) -> StabilityDocument:
        from pymatgen.analysis.phase_diagram import PhaseDiagram

        entries, elemental = by_task[ctx.task]
        system = tuple(sorted(el.symbol for el in entry.composition))
        missing = [el for el in system if el not in elemental]
        if missing:
            return self.failed(
                target,
                ctx,
                f"no elemental reference for {', '.join(missing)}: the shipped "
                f"prototypes ({SOURCE}) have none; add a structure of the element "
                "to structures: or an entry to stability.hull_entries",
                error_type="MissingReference",
            )
        if (ctx.task, system) not in diagrams:
            inside = [
                e
                for e in entries
                if {el.symbol for el in e.composition.elements} <= set(system)
            ]
            diagrams[ctx.task, system] = PhaseDiagram(inside)
        diagram = diagrams[ctx.task, system]
        decomp, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        fractions: dict[str, float] = {}
        for phase, amount in decomp.items():
            name = phase.composition.reduced_formula
            fractions[name] = fractions.get(name, 0.0) + float(amount)
        plots = []
        if self.plot_dir and 2 <= len(system) <= 3:
            plots = [self._plot(diagram, entry, target, ctx)]
        return self.doc(
            target,
            ctx,
            state="completed",
            energy_per_atom=float(entry.uncorrected_energy_per_atom),
            corrections=self.corrections,
            correction_per_atom=float(entry.correction_per_atom),
            formation_energy_per_atom=float(diagram.get_form_energy_per_atom(entry)),
            e_above_hull=float(e_hull),
            decomposition=fractions,
            references={
                el: {
                    "label": elemental[el].entry_id,
                    "energy_per_atom": float(elemental[el].energy_per_atom),
                }
                for el in system
            },
            hull_size=len(diagram.all_entries),
            plots=plots,
        )

    def _plot(self, diagram: PhaseDiagram, entry, target: Target, ctx) -> str:
        title = f"{target.label}: convex hull, {model_title(ctx, target)}"
        fig = hull_figure(diagram, entry, target.label, title)
        return save_figure(
            fig, self.plot_dir, f"{target.formula}_{target.key}_hull.png"
        )


def hull_figure(diagram: PhaseDiagram, entry, name: str, title: str):
    """The convex hull of a binary or ternary system, with ``entry`` on it.

    A binary is drawn as formation energy (eV/atom) against the atomic
    fraction of its second element; a ternary as its composition triangle.
    Stable phases are labelled; unstable ones are drawn up to ``entry``'s
    energy above the hull (at least 0.2 eV/atom), so that ``entry`` always
    shows, however unstable: pymatgen's plot hides everything above 0.2.
    ``entry`` is a red star, annotated with ``name`` and its energy above
    the hull.

    Parameters
    ----------
    diagram : PhaseDiagram
        The hull, with ``entry`` among its entries or not.
    entry : PDEntry
        The material the plot is about.
    name : str
        Its label.
    title : str
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from pymatgen.analysis.phase_diagram import PDPlotter

    e_hull = float(diagram.get_e_above_hull(entry, allow_negative=True))
    limit = max(e_hull, 0.2) + 1e-9
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    lines, _, _ = PDPlotter(diagram).pd_plot_data
    for x, y in lines:
        ax.plot(x, y, "k-", lw=1.2, zorder=1)
    for other in diagram.all_entries:
        if other is entry:
            continue
        stable = other in diagram.stable_entries
        if not stable and diagram.get_e_above_hull(other) > limit:
            continue
        x, y = _hull_point(diagram, other)
        style = {"color": "C2"} if stable else {"mfc": "white", "color": "0.4"}
        ax.plot(x, y, "o", ms=6, zorder=2, **style)
        if stable:
            ax.annotate(
                other.composition.reduced_formula,
                (x, y),
                xytext=(0, 6 if y >= 0 else -8),
                textcoords="offset points",
                ha="center",
                va="bottom" if y >= 0 else "top",
                fontsize=9,
            )
    x, y = _hull_point(diagram, entry)
    ax.plot(x, y, "*", color="C3", ms=13, zorder=3)
    ax.annotate(
        f"{name}\n{e_hull:.3f} eV/atom above hull",
        (x, y),
        xytext=(8, -4),
        textcoords="offset points",
        va="top",
        color="C3",
        fontsize=9,
    )
    if len(diagram.elements) == 2:
        a, b = (el.symbol for el in diagram.elements)
        ax.set_xlabel(f"x in {a}$_{{1-x}}${b}$_x$ (atomic fraction of {b})")
        ax.set_ylabel("formation energy (eV/atom)")
        ax.margins(x=0.12, y=0.12)
    else:
        ax.set_aspect("equal")  # the composition triangle: no axes
        ax.axis("off")
    ax.set_title(title, fontsize=10)
    return fig


def _hull_point(diagram: PhaseDiagram, entry) -> tuple[float, float]:
    """Where ``entry`` lies on the hull plot: (fraction, formation energy)
    for a binary, its triangular coordinates for a ternary."""
    from pymatgen.analysis.phase_diagram import triangular_coord

    fractions = [
        entry.composition.get_atomic_fraction(el) for el in diagram.elements[1:]
    ]
    if len(fractions) == 1:
        return fractions[0], float(diagram.get_form_energy_per_atom(entry))
    x, y = np.ravel(triangular_coord([fractions]))
    return float(x), float(y)
