"""Widom insertion in frameworks: Henry coefficients and heats of adsorption.

The physics is in :mod:`sevenomni_flows.adsorption.widom`; this Maker reads
the framework, relaxes each guest in the gas phase, evaluates every
non-overlapping insertion in batched energy-only passes and stores one
document per guest.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from sevenomni_core.batch import relax
from sevenomni_core.batch.predict import evaluate_graphs
from sevenomni_core.batch.sizing import plan_batches
from sevenomni_core.data import atoms_to_graph

from ..adsorption.adsorbates import get_adsorbate
from ..adsorption.widom import (
    HARD_CORE,
    MIN_EFFECTIVE,
    averages,
    framework_density,
    insertions,
    overlapping,
)
from ..schemas import WidomDocument
from .adsorption import FrameworkInput, check_adsorbates, gas_molecule
from .base import Target, maker_settings, protocol
from .calculation import PropertyMaker

__all__ = ["WidomMaker", "insertion_energies"]

#: Insertions whose graphs are built and evaluated together.
CHUNK = 512


def insertion_energies(pot, task, framework, guest, placed, batch_size="auto"):
    """E(framework + guest) for each placement, eV, in batched energy-only passes.

    A placement the model could not evaluate gets NaN.
    """
    _, task_index = pot.resolve_task(task)
    combined = framework + guest
    n_host = len(framework)
    out = np.full(len(placed), np.nan)
    for start in range(0, len(placed), CHUNK):
        graphs = []
        for positions in placed[start : start + CHUNK]:
            combined.positions[n_host:] = positions
            graphs.append(
                atoms_to_graph(combined, pot.cutoff, pot.network.z_to_index, task_index)
            )
        for batch in plan_batches(graphs, pot.network, pot.device, batch_size):
            preds = evaluate_graphs(pot, [graphs[b] for b in batch], forces=False)
            for b, pred in zip(batch, preds, strict=True):
                if pred.ok:
                    out[start + b] = pred.energy
    return out


@dataclass
class WidomMaker(FrameworkInput, PropertyMaker):
    """Henry coefficients K_H(T) and heats of adsorption Q_st(T) by Widom insertion.

    Inputs are framework files (CIF), read as for
    :class:`~sevenomni_flows.jobs.adsorption.MofAdsorptionMaker`.  The
    framework is rigid (as given, or first relaxed with the model with
    ``relax_framework``); each guest is rigid, relaxed in the gas phase with
    the same model and task.  One document per guest, with K_H and Q_st at
    every temperature, block-average errors, the overlap fraction, the
    count of excluded unphysical insertions and, when several guests are
    run, the selectivities (K_H ratios).

    Parameters
    ----------
    guests : list of str
        Gas molecules, e.g. ``["CO2", "N2", "CH4", "H2O", "H2"]``.
    temperatures : list of float
        K, each > 0.
    n_insertions : int
        Random insertions per guest (positions and orientations uniform).
    seed : int
        Seeds the insertions; each guest's stream depends on its name only.
    hard_core : float
        Overlap cut, as a fraction of covalent radii sums (zero weight, no
        model call).
    min_energy : float
        eV; an insertion with ΔE below it is unphysical: zero weight, counted.
    relax_framework : bool
        Relax the framework's positions first (fixed cell).
    framework_fmax, framework_max_steps
        That relaxation's force threshold (eV/Å) and step limit.
    guest_fmax, guest_max_steps
        The gas-phase relaxation of each guest: eV/Å and steps.
    """

    name: str = "widom"
    guests: list[str] = field(default_factory=lambda: ["CO2", "N2"])
    temperatures: list[float] = field(default_factory=lambda: [298.0])
    n_insertions: int = 10000
    seed: int = 0
    relax_framework: bool = False
    framework_fmax: float = 0.05
    framework_max_steps: int = 500
    guest_fmax: float = 0.01
    guest_max_steps: int = 500
    min_length: float = 12.0
    hard_core: float = HARD_CORE
    min_energy: float = -2.0
    plot_dir: str | None = None

    property: ClassVar[str] = "widom"
    document: ClassVar[type] = WidomDocument
    stage: ClassVar[str] = "framework"

    def __post_init__(self):
        self.guests = check_adsorbates(self.guests, "widom.guests")
        for name in self.guests:
            if not get_adsorbate(name).is_gas:
                raise ValueError(
                    f"widom.guests: {name} is a surface fragment, not a gas molecule"
                )
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError(
                f"widom.temperatures must be > 0 K, got {self.temperatures}"
            )
        if self.n_insertions < 10:
            raise ValueError(
                f"widom.n_insertions must be >= 10, got {self.n_insertions}"
            )
        if not 0 < self.hard_core < 1.5:
            raise ValueError(
                f"widom.hard_core must lie in (0, 1.5), got {self.hard_core}"
            )
        if self.min_energy >= 0:
            raise ValueError(f"widom.min_energy must be < 0 eV, got {self.min_energy}")
        for key in (
            "framework_fmax",
            "framework_max_steps",
            "guest_fmax",
            "guest_max_steps",
        ):
            if getattr(self, key) <= 0:
                raise ValueError(f"widom.{key} must be > 0, got {getattr(self, key)}")

    def targets(self, item, pot, task):
        """One document per guest."""
        settings = maker_settings(self)
        return [
            Target(
                item.formula,
                item.structure_id,
                item.label,
                protocol("widom", pot, task, settings, item.on, {"guest": name}),
                {"host": item.label, "guest": name},
            )
            for name in self.guests
        ]

    def compute(self, items, targets, ctx):
        """Each framework's guests in turn; a failing framework fails alone."""
        out = []
        for item, owed in zip(items, targets, strict=True):
            try:
                out.append(self.framework(item, owed, ctx))
            except Exception as err:  # this framework fails alone
                out.append(err)
        return out

    def framework(self, item, targets, ctx) -> list[WidomDocument]:
        """All guests in one framework."""
        pot, task = ctx.pot, ctx.task
        _, task_index = pot.resolve_task(task)
        host = item.source.copy()
        host.set_constraint()
        if self.relax_framework:
            [res] = relax(
                [host],
                model=pot,
                task=task,
                fmax=self.framework_fmax,
                max_steps=self.framework_max_steps,
            )
            if res.error:
                raise RuntimeError(f"framework relaxation failed: {res.error}")
            host = res.atoms.copy()
            host.calc = None
        gas = relax(
            [gas_molecule(name) for name in self.guests],
            model=pot,
            task=task,
            fmax=self.guest_fmax,
            max_steps=self.guest_max_steps,
        )
        [empty] = evaluate_graphs(
            pot,
            [atoms_to_graph(host, pot.cutoff, pot.network.z_to_index, task_index)],
            forces=False,
        )
        if not empty.ok:
            raise RuntimeError(f"the empty framework: {empty.error}")
        e_host = empty.energy
        density = framework_density(host)
        docs = []
        for target, name, res in zip(targets, self.guests, gas, strict=True):
            if res.error or not res.converged:
                docs.append(
                    self.failed(
                        target, ctx, f"gas-phase {name}: {res.error or 'unconverged'}"
                    )
                )
                continue
            guest = res.atoms.copy()
            docs.append(
                self.guest(
                    target, ctx, host, guest, res.energy, e_host, density, pot, task
                )
            )
        _selectivities(docs)
        return docs

    def guest(self, target, ctx, host, guest, e_guest, e_host, density, pot, task):
        """One guest's insertions and averages."""
        name = target.extra["guest"]
        stream = np.random.SeedSequence([self.seed, zlib.crc32(name.encode())])
        placed = insertions(
            host, guest, self.n_insertions, np.random.default_rng(stream)
        )
        over = overlapping(host, guest.numbers, placed, self.hard_core)
        if over.all():
            return self.failed(
                target,
                ctx,
                f"no insertion of {name} out of {len(placed)} avoided overlap with "
                f"the framework (hard core {self.hard_core:g} of covalent radii): "
                "no pore accessible to this guest",
            )
        energies = np.full(len(placed), np.inf)
        inside = insertion_energies(pot, task, host, guest, placed[~over])
        energies[~over] = inside - e_host - e_guest
        failed = np.isnan(energies)
        evaluated = int((~over).sum())
        if failed.sum() > MAX_FAILED * evaluated:
            return self.failed(
                target,
                ctx,
                f"{int(failed.sum())} of {evaluated} model evaluations of {name} "
                f"failed (more than {MAX_FAILED:.0%}): the averages would rest "
                "on the pores the model can evaluate",
                error_type="EvaluationError",
                n_insertions=len(placed),
                n_overlapping=int(over.sum()),
                n_failed=int(failed.sum()),
            )
        unphysical = energies < self.min_energy
        energies[unphysical] = np.inf
        # failed evaluations leave the sample (and the denominator): zero
        # weight would bias K_H low by the fraction that failed
        energies = energies[~failed]
        results = [averages(energies, t, density) for t in self.temperatures]
        accepted = energies[np.isfinite(energies)]
        plots = []
        if self.plot_dir:
            plots = [_plot(energies, results[0], density, self.plot_dir, target)]
        return self.doc(
            target,
            ctx,
            state="completed",
            temperature=list(self.temperatures),
            dispersion=self.settings.dispersion,
            henry_coefficient=[r.henry_coefficient for r in results],
            henry_coefficient_error=[r.henry_coefficient_error for r in results],
            heat_of_adsorption=[r.heat_of_adsorption for r in results],
            heat_of_adsorption_error=[r.heat_of_adsorption_error for r in results],
            mean_energy=[r.mean_energy for r in results],
            effective_insertions=[r.effective_insertions for r in results],
            n_insertions=len(placed),
            n_overlapping=int(over.sum()),
            overlap_fraction=float(over.mean()),
            n_unphysical=int(unphysical.sum()),
            n_failed=int(failed.sum()),
            lowest_energy=float(accepted.min()) if accepted.size else None,
            framework_density=density,
            framework_energy=float(e_host),
            guest_energy=float(e_guest),
            energies=[float(e) for e in accepted],
            plots=plots,
            warnings=_warnings(
                name, unphysical.sum(), failed.sum(), self.min_energy, results
            ),
        )


#: Most failed model evaluations, as a fraction of those made, before a
#: Widom result is failed.
MAX_FAILED = 0.01


def _warnings(
    name: str, unphysical: int, failed: int, floor: float, results: list
) -> list[str]:
    out = []
    for r in results:
        if r.effective_insertions < MIN_EFFECTIVE:
            out.append(
                f"at {r.temperature:g} K the averages for {name} rest on "
                f"{r.effective_insertions:.1f} effective insertions (fewer than "
                f"{MIN_EFFECTIVE}): K_H and Q_st are not converged, whatever "
                "their block errors say; insert more"
            )
    if unphysical:
        out.append(
            f"{unphysical} insertions of {name} had ΔE below {floor:g} eV "
            "(unphysical for physisorption) and were given zero weight"
        )
    if failed:
        out.append(
            f"{failed} insertions of {name} could not be evaluated; they are "
            "left out of the averages"
        )
    return out


def _selectivities(docs: list[WidomDocument]) -> None:
    """Each completed guest's K_H ratio to every other, per temperature."""
    done = [d for d in docs if d.state == "completed"]
    for d in done:
        d.selectivity = {
            other.guest: [
                a / b if b > 0 else None
                for a, b in zip(
                    d.henry_coefficient, other.henry_coefficient, strict=True
                )
            ]
            for other in done
            if other is not d
        }


def _plot(energies, result, density: float, folder: str, target: Target) -> str:
    """ΔE histogram and the running Q_st at the first temperature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(folder).mkdir(parents=True, exist_ok=True)
    host, guest = target.extra["host"], target.extra["guest"]
    safe = "".join(c if c.isalnum() else "_" for c in f"{host}_{guest}")
    path = Path(folder) / f"{safe}_{target.structure_id}_widom.png"
    t = result.temperature
    counts = np.unique(np.geomspace(10, len(energies), 30).astype(int))
    running = [averages(energies[:n], t, density, blocks=1) for n in counts]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.hist(energies[np.isfinite(energies)], bins=60)
    left.set_xlabel("ΔE (eV)")
    left.set_ylabel("insertions")
    left.set_title(
        f"{host}: {guest}, {np.mean(~np.isfinite(energies)):.0%} zero weight"
    )
    right.plot(counts, [r.heat_of_adsorption for r in running], "o-", ms=3)
    right.set_xscale("log")
    right.set_xlabel("insertions")
    right.set_ylabel(f"Q_st at {t:g} K (kJ/mol)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
