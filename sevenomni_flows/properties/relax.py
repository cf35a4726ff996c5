"""Relaxation and single-point jobs, batched over structures."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase.units import GPa
from pydantic import Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.options import OPTIMIZERS, default

from ..jobs.base import as_structure, constrained_atoms
from ..jobs.calculation import PropertyMaker
from ..jobs.settings import RelaxSettings
from ..schemas import ResultDocument, quantity

__all__ = [
    "Progress",
    "RelaxMaker",
    "StaticMaker",
    "check_optimizer",
    "labelled_atoms",
]

progress_log = logging.getLogger("sevenomni.progress")


class Progress:
    """Progress lines of a long batched job, every ``interval`` seconds.

    A line when it starts, then ``relax: 1200/2000 done, 3 failed, 12
    unconverged, 640 relaxing; 45.1/s, ETA 18 s`` while it runs (logger
    ``sevenomni.progress``, which ``sevenomni run`` prints), also while no
    structure has finished yet.  The ETA is the work left (structures not
    done, times the mean steps of those done) over the measured rate of
    structure-steps, so a batch whose structures finish together near its
    end is not extrapolated from its first, quickest member.
    """

    def __init__(self, what: str, total: int, interval: float = 10.0):
        self.what, self.total, self.interval = what, total, interval
        self.done = self.failed = self.flagged = 0
        self.steps_done = self.work = self.active = 0
        self.start = self.last = time.monotonic()
        progress_log.info("%s: %d structures started", what, total)

    def step(self, active: int) -> None:
        """Count one batched step over ``active`` structures; log if due."""
        self.work += active
        self.active = active
        self._maybe_log()

    def tick(self, failed: bool = False, flag: bool = False, steps: int = 0) -> None:
        """Count one finished item (after ``steps`` steps); log if due."""
        self.done += 1
        self.failed += failed
        self.flagged += flag and not failed
        self.steps_done += steps
        self._maybe_log(force=self.done == self.total)

    def eta(self) -> float | None:
        """Seconds left, or None before anything finished."""
        elapsed = time.monotonic() - self.start
        if not self.done or not self.work or elapsed <= 0:
            return None
        per_structure = max(self.steps_done / self.done, 1.0)
        return (self.total - self.done) * per_structure / (self.work / elapsed)

    def _maybe_log(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = self.eta()
        progress_log.info(
            "%s: %d/%d done, %d failed, %d unconverged, %d relaxing; %.1f/s, ETA %s",
            self.what,
            self.done,
            self.total,
            self.failed,
            self.flagged,
            0 if self.done == self.total else self.active,
            rate,
            "-" if eta is None else f"{eta:.0f} s",
        )


def check_optimizer(name: str, what: str) -> None:
    """Raise ValueError unless ``name`` is a batched optimiser."""
    if name not in OPTIMIZERS:
        raise ValueError(
            f"{what}: unknown optimizer {name!r}; choose from {OPTIMIZERS}"
        )


def labelled_atoms(item, constraints: bool = False):
    """ASE atoms of an item, labelled so that core errors name its source;
    with ``constraints``, its ``FixSymmetry`` too (relaxations honour it)."""
    if constraints:
        atoms = constrained_atoms(item.structure)
    else:
        atoms = AseAtomsAdaptor.get_atoms(item.structure)
    atoms.info["label"] = item.label
    return atoms


class StaticDocument(ResultDocument):
    """Energy, forces and stress of one structure."""

    property: str = "static"
    columns: ClassVar[tuple[str, ...]] = ("energy_per_atom",)
    energy: float | None = quantity(
        "Total energy of the whole input cell (per atom: energy_per_atom)", "eV"
    )
    energy_per_atom: float | None = quantity("Energy per atom", "eV/atom")
    forces: list[list[float]] | None = quantity("Forces", "eV/Å")
    stress: list[float] | None = quantity(
        "Stress, Voigt order xx yy zz yz xz xy, tensile positive", "GPa"
    )


class RelaxDocument(ResultDocument):
    """A relaxed structure."""

    property: str = "relax"
    columns: ClassVar[tuple[str, ...]] = (
        "energy_per_atom",
        "volume_per_atom",
        "converged",
        "steps",
    )
    structure: Structure | None = Field(None, description="The relaxed structure")
    energy: float | None = quantity(
        "Final total energy of the whole cell (per atom: energy_per_atom)", "eV"
    )
    energy_per_atom: float | None = quantity("Final energy", "eV/atom")
    volume_change: float | None = quantity("Final over initial volume", "unitless")
    volume_per_atom: float | None = quantity("Final volume", "Å³/atom")
    converged: bool = Field(False, description="Whether fmax was reached")
    steps: int = Field(0, description="Optimiser steps taken")
    max_force: float | None = quantity("Largest final force", "eV/Å")
    fmax: float | None = quantity("Convergence threshold", "eV/Å")
    relax_cell: bool | None = Field(None, description="Whether the cell was relaxed")


@dataclass
class RelaxMaker(PropertyMaker):
    """Relax one structure, or a list of them in one batched job.

    Each finished structure's document is written to the results store as
    soon as it is done, so a killed job keeps them.

    Parameters
    ----------
    name : str
        Job name.
    settings : ModelSettings
        Model, task, device and dtype.
    fmax : float
        Force convergence threshold, eV/Å.
    max_steps : int
        Most FIRE steps.  A relaxation that does not converge is stored as
        ``completed`` with ``converged: false``; properties are not computed
        on it (they are ``skipped``).
    relax_cell : bool
        Also relax the cell (FrechetCellFilter-equivalent).
    max_volume_change : float
        Safety net: a cell relaxation whose volume changes by more than this
        factor is stopped, and its document says so.
    optimizer : str
        ``"fire"`` (ASE's FIRE), ``"lbfgs"`` or ``"bfgs"`` (ASE's, batched).
    """

    name: str = "relax"
    fmax: float = default("relax", "fmax")
    max_steps: int = default("relax", "max_steps")
    # a screening relaxes the cell (atomate2's habit); relax() alone keeps it
    relax_cell: bool = True
    max_volume_change: float = default("relax", "max_volume_change")
    optimizer: str = default("relax", "optimizer")

    property: ClassVar[str] = "relax"
    document: ClassVar[type] = RelaxDocument
    stage: ClassVar[str] = "material"
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        key = self.spec_key
        if self.fmax <= 0:
            raise ValueError(f"{key('fmax')} must be > 0 eV/Å, got {self.fmax}")
        if self.max_steps < 0:
            raise ValueError(f"{key('max_steps')} must be >= 0, got {self.max_steps}")
        if self.max_volume_change <= 1:
            raise ValueError(
                f"{key('max_volume_change')} must be > 1, got {self.max_volume_change}"
            )
        check_optimizer(self.optimizer, key("optimizer"))

    def compute(self, items, targets, ctx):
        """Relax all items in one batch; each document is published when done."""
        from sevenomni_core.batch import relax

        docs: list = [None] * len(items)
        progress = Progress("relax", len(items))

        def done(i, result):
            docs[i] = [self.describe(items[i], targets[i][0], result, ctx)]
            ctx.publisher.add(docs[i])
            progress.tick(
                failed=result.error is not None,
                flag=not result.converged,
                steps=result.steps,
            )

        relax(
            [labelled_atoms(it, constraints=True) for it in items],
            model=ctx.pot,
            task=[it.task for it in items],
            fmax=self.fmax,
            max_steps=self.max_steps,
            relax_cell=self.relax_cell,
            max_volume_change=self.max_volume_change,
            optimizer=self.optimizer,
            on_result=done,
            on_step=progress.step,
        )
        return docs

    def describe(self, item, target, r, ctx) -> RelaxDocument:
        """The document of one relaxation result."""
        if r.error is not None:
            return self.failed(
                target,
                ctx,
                r.error,
                error_type="RelaxationError",
                input_structure=item.structure,
                fmax=self.fmax,
                relax_cell=self.relax_cell,
                steps=r.steps,
            )
        final = as_structure(r.atoms)
        return self.doc(
            target,
            ctx,
            state="completed",
            input_structure=item.structure,
            fmax=self.fmax,
            relax_cell=self.relax_cell,
            structure=final,
            energy=r.energy,
            energy_per_atom=r.energy / len(final),
            volume_per_atom=final.volume / len(final),
            volume_change=final.volume / item.structure.volume,
            converged=r.converged,
            steps=r.steps,
            max_force=float(np.linalg.norm(r.forces, axis=1).max()),
        )


@dataclass
class StaticMaker(PropertyMaker):
    """Energy, forces and stress of one structure or a batch, in one pass."""

    name: str = "static"

    property: ClassVar[str] = "static"
    document: ClassVar[type] = StaticDocument
    stage: ClassVar[str] = "material"
    mixes_tasks: ClassVar[bool] = True

    def compute(self, items, targets, ctx):
        """One batched prediction; a bad structure fails alone."""
        from sevenomni_core.batch import predict

        preds = predict(
            [labelled_atoms(it) for it in items],
            model=ctx.pot,
            task=[it.task for it in items],
        )
        out = []
        for it, (target,), p in zip(items, targets, preds, strict=True):
            if not p.ok:
                out.append([self.failed(target, ctx, p.error)])
                continue
            out.append(
                [
                    self.doc(
                        target,
                        ctx,
                        state="completed",
                        input_structure=it.structure,
                        energy=p.energy,
                        energy_per_atom=p.energy / len(it.structure),
                        forces=p.forces.tolist(),
                        stress=None if p.stress is None else (p.stress / GPa).tolist(),
                    )
                ]
            )
        return out


def per_cell(groups: list[list], tasks: list) -> list:
    """The task of every cell of ``groups``, from the task of each group."""
    return [task for group, task in zip(groups, tasks, strict=True) for _ in group]


def relax_groups(
    groups: list[list], ctx, settings: RelaxSettings, tasks: list | None = None
) -> list[list]:
    """Relax the cells of many materials at fixed cell in one batch, per group.

    Used by the elastic, EOS and QHA Makers: the deformed cells of every
    material of a job share the batched forward passes.  ``tasks`` gives
    each group's task (default: the job's).
    """
    from sevenomni_core.batch import relax

    flat = [atoms for group in groups for atoms in group]
    task = ctx.task if tasks is None else per_cell(groups, tasks)
    results = relax(
        flat,
        model=ctx.pot,
        task=task,
        fmax=settings.fmax,
        max_steps=settings.max_steps,
        optimizer=settings.optimizer,
    )
    out, start = [], 0
    for group in groups:
        out.append(results[start : start + len(group)])
        start += len(group)
    return out


def inner_failure(results, settings: RelaxSettings, what: str) -> str | None:
    """Why a set of inner (fixed-cell) relaxations cannot be used, or None.

    The rule: every inner relaxation must finish without error and converge
    to ``settings.fmax`` within its ``max_steps``; otherwise the property fails, naming
    how many did not and the largest remaining force.
    """
    errors = [r.error for r in results if r.error]
    if errors:
        return f"{len(errors)} of {len(results)} {what} failed: {errors[0]}"
    stuck = [r for r in results if not r.converged]
    if stuck:
        worst = max(float(np.linalg.norm(r.forces, axis=1).max()) for r in stuck)
        return (
            f"{len(stuck)} of {len(results)} {what} did not converge within "
            f"{settings.max_steps} steps (largest force {worst:.3g} eV/Å > fmax "
            f"{settings.fmax} eV/Å); "
            "raise max_steps or fmax"
        )
    return None
