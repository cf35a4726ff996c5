"""Widom insertion in frameworks: Henry coefficients and heats of adsorption.

The physics is in :mod:`sevenomni_flows.properties.widom.averages` (averages),
:mod:`~sevenomni_flows.properties.widom.sampling` (biased proposals, exact
weights), :mod:`~sevenomni_flows.properties.widom.prescan` (model-free sites) and
:mod:`~sevenomni_flows.properties.widom.sampling_rounds` (rounds to convergence),
:mod:`~sevenomni_flows.properties.widom.adaptation` (sites learned per round);
:mod:`~sevenomni_flows.properties.widom.insertions` evaluates the insertions.
This Maker reads the frameworks, relaxes each guest in the gas phase and
each guest's strongest sites in each framework (one batch: the floor and
more sites), then inserts in rounds: every framework × guest still
sampling adds its round's insertions to one batched energy-only pass, until
each is converged or spent.  One document per guest and framework.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from ...adsorption.adsorbates import get_adsorbate
from ...adsorption.mofs import MIN_LENGTH
from ...jobs.base import Target, maker_settings, protocol
from ...jobs.calculation import PropertyMaker, model_title
from ...jobs.plots import alnum_name, start_plot
from ...jobs.settings import RelaxSettings, accepts_old_names
from ..adsorption import FrameworkInput, check_adsorbates, gas_molecule
from .adaptation import AdaptiveProposal
from .averages import (
    HARD_CORE,
    K_B,
    framework_density,
    overlapping,
)
from .document import WidomDocument
from .insertions import batched_energies
from .prescan import Sites, find_sites, linear_axis, symmetric_copies
from .sampling import SAMPLINGS, MixtureProposal, both_ends, place
from .sampling_rounds import Targets, WidomSample

__all__ = ["WidomMaker"]

#: Top-weighted geometries kept in the data store.
TOP = 5


@dataclass
class _Run:
    """One guest in one framework while it samples."""

    target: Target
    host: Atoms
    guest: Atoms
    e_host: float
    e_guest: float
    rng: np.random.Generator
    sites: Sites
    sample: WidomSample
    adaptive: AdaptiveProposal | None = None
    site_energies: list[float] = field(default_factory=list)
    kept: list[np.ndarray] = field(default_factory=list)
    evaluated: list[np.ndarray] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None


@accepts_old_names
@dataclass
class WidomMaker(FrameworkInput, PropertyMaker):
    """Henry coefficients K_H(T) and heats of adsorption Q_st(T) by Widom insertion.

    Inputs are framework files (CIF), read as for
    :class:`~sevenomni_flows.properties.adsorption.MofAdsorptionMaker`.  The
    framework is rigid (as given, or first relaxed with the model with
    ``relax_framework``); each guest is rigid, relaxed in the gas phase with
    the same model and task.  Insertions are drawn uniformly or, by default,
    from a mixture biased toward the guest's strong sites (open metals, a
    Lennard-Jones pre-scan, and those sites relaxed with the model) and
    reweighted exactly; they are made in rounds until K_H and Q_st are
    converged.  One document per guest, with K_H and Q_st at every
    temperature, bootstrap errors, the convergence history, the overlap
    fraction, the excluded and failed counts, the top-weighted geometries
    and, when several guests are run, the selectivities (K_H ratios).

    Parameters
    ----------
    guests : list of str
        Gas molecules, e.g. ``["CO2", "N2", "CH4", "H2O", "H2"]``.
    temperatures : list of float
        K, each > 0.
    sampling : str
        ``biased`` (mixture proposal near the sites, exact weights) or
        ``uniform`` (the plain estimator).
    target_error : float
        Relative bootstrap error of K_H to reach at every temperature (> 0).
    target_qst_error : float
        Bootstrap error of Q_st to reach, kJ/mol (> 0).
    max_insertions : int
        Most model evaluations per guest and framework (overlapping
        insertions cost none); reached unconverged, the document is
        completed with ``converged: false`` and the reason.
    n_insertions : int or None
        A fixed number of insertions instead of rounds: one round of exactly
        that many; the targets then only judge ``converged``.
    seed : int
        Seeds the insertions; each guest's stream depends on its name only.
    hard_core : float
        Overlap cut, as a fraction of covalent radii sums (zero weight, no
        model call).
    floor_kt : float
        The unphysical floor: ΔE below the lowest relaxed-site energy minus
        ``floor_kt`` k_B T (the highest temperature; 0 stands for the lowest
        site if none binds) gets zero weight and is counted.
    site_relaxations : int
        Strongest site poses per guest and framework relaxed with the model
        (framework fixed) for the floor and as more proposal sites; 0 turns
        the floor off.
    site_relax : RelaxSettings
        Those relaxations.
    mixing : float
        The biased proposal's share of draws near the sites, in [0, 1).
    learned_sites : int
        After each round, the heaviest distinct insertions so far (this many,
        copied by symmetry) become sites of the next round's proposal, each
        insertion weighted against its own round's proposal
        (:mod:`~sevenomni_flows.properties.widom.adaptation`); 0 keeps the first
        round's sites throughout.
    relax_framework : bool
        Relax the framework's positions first (fixed cell).
    framework_relax : RelaxSettings
        That relaxation.
    guest_relax : RelaxSettings
        The gas-phase relaxation of each guest.
    """

    name: str = "widom"
    guests: list[str] = field(default_factory=lambda: ["CO2", "N2"])
    temperatures: list[float] = field(default_factory=lambda: [298.0])
    sampling: str = "biased"
    target_error: float = Targets.error
    target_qst_error: float = Targets.qst_error
    max_insertions: int = Targets.max_evaluations
    n_insertions: int | None = None
    seed: int = 0
    relax_framework: bool = False
    framework_relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.05, max_steps=500)
    )
    guest_relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.01, max_steps=500)
    )
    min_length: float = MIN_LENGTH
    hard_core: float = HARD_CORE
    floor_kt: float = 10.0
    site_relaxations: int = 4
    site_relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.05, max_steps=100)
    )
    mixing: float = MixtureProposal.mixing
    learned_sites: int = AdaptiveProposal.top
    plot_dir: str | None = None

    property: ClassVar[str] = "widom"
    document: ClassVar[type] = WidomDocument
    stage: ClassVar[str] = "framework"
    # 1: each insertion weighted against its own round's proposal (unbiased)
    revision: ClassVar[int] = 1

    def __post_init__(self):
        super().__post_init__()
        key_of = self.spec_key
        self.guests = check_adsorbates(self.guests, key_of("guests"))
        for name in self.guests:
            if not get_adsorbate(name).is_gas:
                raise ValueError(
                    f"{key_of('guests')}: {name} is a surface fragment, not a gas "
                    "molecule"
                )
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError(
                f"{key_of('temperatures')} must be > 0 K, got {self.temperatures}"
            )
        if self.sampling not in SAMPLINGS:
            raise ValueError(
                f"{key_of('sampling')} must be one of {', '.join(SAMPLINGS)}, "
                f"got {self.sampling!r}"
            )
        for key in ("target_error", "target_qst_error"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key_of(key)} must be > 0, got {getattr(self, key)}")
        if self.n_insertions is not None and self.n_insertions < 10:
            raise ValueError(
                f"{key_of('n_insertions')} must be >= 10, got {self.n_insertions}"
            )
        if self.max_insertions < 10:
            raise ValueError(
                f"{key_of('max_insertions')} must be >= 10, got {self.max_insertions}"
            )
        if not 0 < self.hard_core < 1.5:
            raise ValueError(
                f"{key_of('hard_core')} must lie in (0, 1.5), got {self.hard_core}"
            )
        if not 0 <= self.mixing < 1:
            raise ValueError(
                f"{key_of('mixing')} must lie in [0, 1), got {self.mixing}"
            )
        for key in ("site_relaxations", "learned_sites"):
            if getattr(self, key) < 0:
                raise ValueError(
                    f"{key_of(key)} must be >= 0, got {getattr(self, key)}"
                )
        if self.floor_kt <= 0:
            raise ValueError(f"{key_of('floor_kt')} must be > 0, got {self.floor_kt}")

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
        """Every framework and guest sampled together; a framework fails alone."""
        from sevenomni_core.batch import relax

        pot, task = ctx.pot, ctx.task
        gas = relax(
            [gas_molecule(name) for name in self.guests],
            model=pot,
            task=task,
            fmax=self.guest_relax.fmax,
            max_steps=self.guest_relax.max_steps,
            optimizer=self.guest_relax.optimizer,
        )
        out: list = []
        runs: list[_Run] = []
        docs: dict[int, list] = {}
        for k, (item, owed) in enumerate(zip(items, targets, strict=True)):
            try:
                host, e_host = self._host(item, pot, task)
            except Exception as err:  # this framework fails alone
                out.append(err)
                continue
            out.append(None)
            docs[k] = []
            for target, name, res in zip(owed, self.guests, gas, strict=True):
                if res.error or not res.converged:
                    docs[k].append(
                        self.failed(
                            target,
                            ctx,
                            f"gas-phase {name}: {res.error or 'unconverged'}",
                        )
                    )
                    continue
                runs.append(self._run(target, host, e_host, res.atoms, res.energy))
                docs[k].append(runs[-1])
        self._relax_sites(runs, pot, task)
        self._rounds(runs, pot, task)
        for k, made in docs.items():
            done = [self._document(r, ctx) if isinstance(r, _Run) else r for r in made]
            _selectivities(done)
            out[k] = done
        return out

    def _host(self, item, pot, task) -> tuple[Atoms, float]:
        """The rigid framework (relaxed if asked) and its energy, eV."""
        from sevenomni_core.batch import relax
        from sevenomni_core.batch.predict import evaluate_graphs
        from sevenomni_core.data import atoms_to_graph

        _, task_index = pot.resolve_task(task)
        host = item.source.copy()
        host.set_constraint()
        if self.relax_framework:
            [res] = relax(
                [host],
                model=pot,
                task=task,
                fmax=self.framework_relax.fmax,
                max_steps=self.framework_relax.max_steps,
                optimizer=self.framework_relax.optimizer,
            )
            if res.error:
                raise RuntimeError(f"framework relaxation failed: {res.error}")
            host = res.atoms.copy()
            host.calc = None
        [empty] = evaluate_graphs(
            pot,
            [atoms_to_graph(host, pot.cutoff, pot.network.z_to_index, task_index)],
            forces=False,
        )
        if not empty.ok:
            raise RuntimeError(f"the empty framework: {empty.error}")
        return host, float(empty.energy)

    def _run(self, target, host, e_host, relaxed, e_guest) -> _Run:
        """A guest's sample in a framework, with its model-free sites."""
        name = target.extra["guest"]
        guest = relaxed.copy()
        guest.calc = None
        guest.pbc = False
        stream = np.random.SeedSequence([self.seed, zlib.crc32(name.encode())])
        rng = np.random.default_rng(stream)
        sites = find_sites(
            host, get_adsorbate(name), guest, rng, hard_core=self.hard_core
        )
        targets = Targets(
            error=self.target_error,
            qst_error=self.target_qst_error,
            max_evaluations=self.max_insertions,
            fixed=self.n_insertions,
        )
        sample = WidomSample(list(self.temperatures), framework_density(host), targets)
        return _Run(target, host, guest, e_host, float(e_guest), rng, sites, sample)

    def _relax_sites(self, runs: list[_Run], pot, task) -> None:
        """Relax the strongest site poses (framework fixed): floor and sites."""
        from sevenomni_core.batch import relax

        starts, owners = [], []
        for r in runs:
            order = _strongest(r.sites, self.site_relaxations)
            for i in order:
                atoms = r.host + r.guest
                atoms.positions[len(r.host) :] = r.sites.poses[i]
                starts.append(atoms)
                owners.append(r)
        results = []
        if starts:
            results = relax(
                starts,
                model=pot,
                task=task,
                fmax=self.site_relax.fmax,
                max_steps=self.site_relax.max_steps,
                optimizer=self.site_relax.optimizer,
                fixed=[list(range(len(o.host))) for o in owners],
            )
        relaxed: dict[int, list] = {}
        for r, res in zip(owners, results, strict=True):
            if res.error or res.energy is None or not np.isfinite(res.energy):
                continue
            r.site_energies.append(res.energy - r.e_host - r.e_guest)
            relaxed.setdefault(id(r), []).append(res.atoms.positions[len(r.host) :])
        t_max = max(self.temperatures)
        for r in runs:
            if r.site_energies:
                # a relaxation that ended unbound (ΔE > 0) says nothing of
                # how deep the sites go: the floor is never above ΔE = 0
                lowest = min(min(r.site_energies), 0.0)
                r.sample.floor = lowest - self.floor_kt * K_B * t_max
            copies = symmetric_copies(r.host)
            r.adaptive = AdaptiveProposal(
                self._proposal(r, relaxed.get(id(r), []), copies),
                copies,
                top=self.learned_sites,
            )

    def _proposal(self, r: _Run, relaxed: list[np.ndarray], copies) -> MixtureProposal:
        """Uniform, or the mixture over the model-free and relaxed sites.

        The relaxed sites (the model's own minima) are copied by the
        framework's symmetry and get half the site draws.
        """
        cell = r.host.cell.array
        if self.sampling == "uniform":
            return MixtureProposal(cell)
        masses = r.guest.get_masses()
        body = linear_axis(r.guest)
        groups = [(r.sites.centres, r.sites.axes)]
        if relaxed:
            centres = np.array([masses @ p / masses.sum() for p in relaxed])
            axes = None
            if body is not None:
                axes = np.array([_principal_axis(p) for p in relaxed])
            groups.append(copies(centres, axes))
        all_c, all_a, shares = [], [], []
        for group in groups:
            centres, axes = both_ends(*group)
            if axes is not None:
                all_a.append(axes)
            all_c.append(centres)
            shares.append(np.full(len(centres), 1.0 / max(len(centres), 1)))
        return MixtureProposal(
            cell,
            np.concatenate(all_c),
            np.concatenate(all_a) if body is not None else None,
            body,
            mixing=self.mixing,
            shares=np.concatenate(shares),
        )

    def _rounds(self, runs: list[_Run], pot, task) -> None:
        """Rounds of shared batched evaluations until every sample is done."""
        active = [r for r in runs if not r.error]
        while active:
            jobs, plans = [], []
            for r in active:
                plan = self._draw(r)
                plans.append(plan)
                jobs.append((r.host, r.guest, plan["placed"][~plan["over"]]))
            energies = batched_energies(pot, task, jobs)
            for r, plan, e in zip(active, plans, energies, strict=True):
                delta = np.full(len(plan["placed"]), np.inf)
                delta[~plan["over"]] = e - r.e_host - r.e_guest
                keep = r.sample.add(delta, np.ones(len(delta)))
                evaluated = ~plan["over"][keep]
                r.kept.append(plan["placed"][keep][evaluated])
                r.evaluated.append(evaluated)
                poses = [plan[k][keep][evaluated] for k in ("centres", "rotations")]
                r.adaptive.record(int(keep.sum()), *poses)
                self._guard(r)
                if r.error:
                    continue
                mask = np.concatenate(r.evaluated)  # sample entries recorded
                weights = np.ones(r.sample.n_insertions)
                weights[mask] = r.adaptive.weights()
                r.sample.reweight(weights)
                r.sample.check()
                if not r.sample.done:
                    r.adaptive.learn(r.sample.mass()[mask])
            active = [r for r in active if not (r.error or r.sample.done)]

    def _draw(self, r: _Run) -> dict:
        """One round's insertions of one run: placements, overlaps, weights."""
        s = r.sample
        want = s.wanted()
        centred = r.guest.positions - r.guest.get_center_of_mass()
        n = want if s.targets.fixed else math.ceil(want / s.accept_rate() * 1.1)
        centres, rotations = r.adaptive.current().sample(n, r.rng)
        placed = place(centred, centres, rotations)
        over = overlapping(r.host, r.guest.numbers, placed, self.hard_core)
        if not s.targets.fixed:
            room = s.targets.max_evaluations - s.evaluations
            cut = np.searchsorted(np.cumsum(~over), room, side="right")
            if cut < n:  # at the maximum: draws up to the last one it affords
                placed, over = placed[:cut], over[:cut]
                centres, rotations = centres[:cut], rotations[:cut]
        return {
            "placed": placed,
            "over": over,
            "centres": centres,
            "rotations": rotations,
        }

    def _guard(self, r: _Run) -> None:
        """No pore, or too many failed evaluations: the run fails."""
        s = r.sample
        name = r.target.extra["guest"]
        if s.evaluations == 0:
            r.error = (
                f"no insertion of {name} out of {s.n_insertions} avoided overlap "
                f"with the framework (hard core {self.hard_core:g} of covalent "
                "radii): no pore accessible to this guest"
            )
        elif s.n_failed > MAX_FAILED * s.evaluations:
            r.error = (
                f"{s.n_failed} of {s.evaluations} model evaluations of {name} "
                f"failed (more than {MAX_FAILED:.0%}): the averages would rest "
                "on the pores the model can evaluate"
            )
            r.error_type = "EvaluationError"

    def _document(self, r: _Run, ctx) -> WidomDocument:
        """The document of one run."""
        s = r.sample
        counts = {
            "n_insertions": s.n_insertions + s.n_failed,
            "n_overlapping": s.n_overlapping,
            "n_failed": s.n_failed,
            "evaluations": s.evaluations,
            "sampling": self.sampling,
        }
        if r.error:
            return self.failed(
                r.target, ctx, r.error, error_type=r.error_type, **counts
            )
        energies, weights = s.sample()
        accepted = np.isfinite(energies)
        results = s.results
        top = _top(r, energies)
        plots = []
        if self.plot_dir:
            title = model_title(ctx, r.target)
            plots = [
                _plot(energies, weights, results[0], s, self.plot_dir, r.target, title)
            ]
        return self.doc(
            r.target,
            ctx,
            state="completed",
            temperature=list(self.temperatures),
            dispersion=self.settings.dispersion,
            henry_coefficient=[x.henry_coefficient for x in results],
            henry_coefficient_error=[x.henry_coefficient_error for x in results],
            heat_of_adsorption=[x.heat_of_adsorption for x in results],
            heat_of_adsorption_error=[x.heat_of_adsorption_error for x in results],
            mean_energy=[x.mean_energy for x in results],
            effective_insertions=[x.effective_insertions for x in results],
            converged=s.converged,
            unconverged_reason=s.reason,
            history=s.history,
            overlap_fraction=s.n_overlapping / max(s.n_insertions + s.n_failed, 1),
            n_unphysical=s.n_unphysical,
            energy_floor=None if math.isinf(s.floor) else float(s.floor),
            site_energies=[float(e) for e in r.site_energies],
            lowest_energy=float(energies[accepted].min()) if accepted.any() else None,
            framework_density=s.density,
            framework_energy=r.e_host,
            guest_energy=r.e_guest,
            energies=[float(e) for e in energies[accepted]],
            importance_weights=[float(w) for w in weights[accepted]],
            top_energies=top[0],
            top_geometries=top[1],
            plots=plots,
            warnings=_warnings(r),
            **counts,
        )


#: Most failed model evaluations, as a fraction of those made, before a
#: Widom result is failed.
MAX_FAILED = 0.01


def _principal_axis(positions: np.ndarray) -> np.ndarray:
    """The principal axis of a (relaxed, nearly linear) guest's atoms."""
    return np.linalg.svd(positions - positions.mean(axis=0))[2][0]


def _strongest(sites: Sites, n: int) -> list[int]:
    """Site poses to relax: the open-metal ones first (two at most), then
    the lowest Lennard-Jones ones, ``n`` in all."""
    metal = [i for i, lab in enumerate(sites.labels) if lab == "open-metal"][:2]
    rest = [i for i in np.argsort(sites.energies) if i not in metal]
    return (metal + [int(i) for i in rest])[:n]


def _top(r: _Run, energies):
    """ΔE (eV) and structures of the :data:`TOP` heaviest insertions."""
    mass = r.sample.mass()
    kept = np.concatenate(r.kept) if r.kept else np.zeros((0, len(r.guest), 3))
    row = np.cumsum(np.concatenate(r.evaluated)) - 1  # sample entry -> kept row
    order = [int(i) for i in np.argsort(-mass)[:TOP] if mass[i] > 0]
    structures = []
    for i in order:
        atoms = r.host + r.guest
        atoms.positions[len(r.host) :] = kept[row[i]]
        atoms.wrap()
        structures.append(AseAtomsAdaptor.get_structure(atoms))
    return [float(energies[i]) for i in order], structures


def _warnings(r: _Run) -> list[str]:
    s, name = r.sample, r.target.extra["guest"]
    out = []
    if s.reason:
        out.append(f"{name}: {s.reason}")
    if s.n_unphysical:
        out.append(
            f"{s.n_unphysical} insertions of {name} had ΔE below the floor "
            f"{s.floor:.3f} eV (the lowest relaxed site minus the floor's kT) "
            "and were given zero weight"
        )
    if not r.site_energies:
        out.append(f"no site of {name} was relaxed: no floor on ΔE")
    if s.n_failed:
        out.append(
            f"{s.n_failed} insertions of {name} could not be evaluated; they are "
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


def _plot(
    energies, weights, result, sample, folder: str, target: Target, model: str
) -> str:
    """ΔE histogram and the convergence history of K_H at the first
    temperature, titled with the host, the guest and ``model`` (the model and
    task)."""
    host, guest = target.extra["host"], target.extra["guest"]
    name = f"{alnum_name(f'{host}_{guest}')}_{target.structure_id}_widom.png"
    plt, path = start_plot(folder, name)
    t = result.temperature
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    finite = np.isfinite(energies)
    left.hist(energies[finite], bins=60, weights=weights[finite])
    left.set_xlabel("ΔE (eV)")
    left.set_ylabel("insertions per bin (weighted)")
    left.set_title(f"ΔE of {guest}: {np.mean(~finite):.0%} zero weight", fontsize=10)
    n = [h["evaluations"] for h in sample.history]
    k = [h["henry_coefficient"][0] for h in sample.history]
    err = [h["henry_coefficient_error"][0] for h in sample.history]
    right.errorbar(n, k, yerr=err, fmt="o-", ms=3)
    right.set_xscale("log")
    right.set_xlabel("model evaluations")
    right.set_ylabel(f"K_H at {t:g} K (mol/kg/Pa)")
    right.set_title("convergence of K_H", fontsize=10)
    fig.suptitle(f"{host}: Widom insertion of {guest}, {model}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
