"""Adsorption energies on metal surfaces and in metal-organic frameworks.

For one host, the empty host, every placement of every adsorbate and the
gas-phase references are relaxed together in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms
from jobflow import Flow
from pydantic import Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ..adsorption.adsorbates import get_adsorbate
from ..adsorption.anomalies import EXCLUDING, classify
from ..adsorption.mofs import MIN_LENGTH, guest_placements, read_framework
from ..adsorption.references import needed_molecules, reference
from ..adsorption.slab_protocol import SlabProtocol
from ..adsorption.surfaces import (
    build_slab,
    check_metal,
    find_sites,
    place,
    random_sites,
)
from ..jobs.base import Item, Target, maker_settings, protocol
from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import alnum_name, start_plot
from ..jobs.settings import RelaxSettings, accepts_old_names
from ..schemas import ResultDocument, bulky, quantity, structure_id
from .relax import RelaxMaker

__all__ = [
    "DEFAULT_GUESTS",
    "FrameworkInput",
    "MofAdsorptionMaker",
    "SlabAdsorptionMaker",
    "check_adsorbates",
    "check_miller",
    "check_scheme",
    "evaluate_candidates",
]

GAS_BOX = 15.0  # Å, cubic box of the gas references (non-periodic)
#: The guests of a framework when none are named (the Maker's and a spec's).
DEFAULT_GUESTS = ("CO2", "H2O", "N2")


class AdsorptionDocument(ResultDocument):
    """The adsorption energy of one adsorbate on one host, over all placements."""

    property: str = "adsorption"
    columns: ClassVar[tuple[str, ...]] = (
        "host",
        "adsorbate",
        "site",
        "adsorption_energy",
        "reference_scheme",
        "n_candidates",
        "n_anomalous",
    )
    host: str = Field(description="Host: formula and Miller index, or the MOF name")
    miller_index: list[int] | None = Field(None, description="Surface Miller index")
    adsorbate: str = Field(description="Adsorbate name")
    site: str | None = Field(None, description="Site of the lowest valid candidate")
    adsorption_energy: float | None = quantity(
        "E(host+adsorbate) - E(host) - E(reference)", "eV"
    )
    reference_scheme: str = Field(description="'gas' (molecules) or 'oc20' (atomic)")
    reference_energy: float | None = quantity("E(reference)", "eV")
    reference_description: str | None = Field(None, description="How it was obtained")
    host_energy: float | None = quantity(
        "Relaxed empty host, the whole slab or framework cell as computed", "eV"
    )
    n_candidates: int = Field(0, description="Placements relaxed")
    n_anomalous: int = Field(0, description="Placements flagged and excluded")
    candidates: list[dict] = Field(
        default_factory=list,
        description="Every placement: site, final_site, energy (eV), "
        "adsorption_energy (eV), anomalies, converged",
    )
    relaxed_structures: list[Structure | None] | None = bulky("Relaxed placements")
    slab: dict | None = Field(
        None,
        description="The slab as built: layers, fixed_layers, supercell [n, m], "
        "surface_atoms, coverage (ML), thickness (Å), vacuum (Å), "
        "image_distance (Å, in-plane periodic images) and the protocol",
    )
    warnings: list[str] = Field(
        default_factory=list, description="What may make the result less reliable"
    )


def gas_molecule(name: str) -> Atoms:
    """Adsorbate ``name`` as a gas-phase molecule in its box (no periodicity)."""
    atoms = get_adsorbate(name).atoms.copy()
    atoms.center(vacuum=GAS_BOX / 2)
    atoms.pbc = False
    return atoms


def _final_site(atoms: Atoms, position: np.ndarray, sites: list[dict]) -> str | None:
    if not sites:
        return None
    cell = atoms.cell.array
    best, label = np.inf, None
    for s in sites:
        if s["label"] == "random":
            continue
        d = np.asarray(s["position"][:2]) - position[:2]
        for i in (-1, 0, 1):
            for j in (-1, 0, 1):
                dist = np.linalg.norm(d + (i * cell[0] + j * cell[1])[:2])
                if dist < best:
                    best, label = dist, s["label"]
    return label


def evaluate_candidates(
    maker,
    ctx,
    groups: list[tuple[Atoms, list, list[dict] | None]],
    surface: bool,
) -> tuple[dict, list[tuple]]:
    """Relax hosts, their placements and the gas references in one batch.

    ``groups`` are ``(host, placements, sites)``, the placements being
    ``(adsorbate, site, atoms, adsorbate indices)``.  Returns the
    references per adsorbate and, per group, the host result and per
    placement its relaxation result, anomaly flags and final site.

    Raises
    ------
    RuntimeError
        If an empty host or a gas reference fails to relax.
    """
    from sevenomni_core.batch import relax

    pot, task = ctx.pot, ctx.task
    adsorbates = sorted({p[0] for _, placements, _ in groups for p in placements})
    molecules = sorted(
        needed_molecules(
            [get_adsorbate(a) for a in adsorbates], maker.reference_scheme, task
        )
    )
    inputs = []
    for host, placements, _ in groups:
        inputs += [host] + [p[2] for p in placements]
    results = relax(
        inputs + [gas_molecule(m) for m in molecules],
        model=pot,
        task=task,
        fmax=maker.relax.fmax,
        max_steps=maker.relax.max_steps,
        optimizer=maker.relax.optimizer,
    )
    mol_res = dict(zip(molecules, results[len(inputs) :], strict=True))
    bad = [f"{m}: {r.error}" for m, r in mol_res.items() if r.error]
    if bad:
        raise RuntimeError(f"reference relaxation failed: {bad[0]}")
    energies = {m: r.energy for m, r in mol_res.items()}
    refs = {
        a: reference(get_adsorbate(a), maker.reference_scheme, energies, task)
        for a in adsorbates
    }
    out, start = [], 0
    for host, placements, sites in groups:
        host_res = results[start]
        if host_res.error:
            raise RuntimeError(f"host relaxation failed: {host_res.error}")
        mine = results[start + 1 : start + 1 + len(placements)]
        start += 1 + len(placements)
        out.append(
            (host_res, _classified(host, host_res, placements, mine, surface, sites))
        )
    return refs, out


def _classified(host, host_res, placements, results, surface, sites) -> list:
    """Per placement: its result, anomaly flags and final site."""
    evaluated = []
    for (ads, site, atoms, idx), res in zip(placements, results, strict=True):
        if res.error:
            evaluated.append((res, ["failed"], None))
            continue
        final = res.atoms
        binding = idx[get_adsorbate(ads).binding]
        final_site = (
            _final_site(final, final.positions[binding], sites) if surface else None
        )
        flags = classify(
            atoms,
            final,
            idx,
            np.arange(len(host)),
            host_res.atoms,
            surface,
            initial_site=site if surface and site != "random" else None,
            final_site=final_site if site != "random" else None,
        )
        evaluated.append((res, flags, final_site))
    return evaluated


def _documents(maker, targets, ctx, placements, evaluated, host_res, refs, **extra):
    """One document per target (adsorbate) from the evaluated placements.

    ``extra`` fields (e.g. the slab as built) go into every document.
    """
    e_host = host_res.energy
    docs = []
    for target in targets:
        ads = target.extra["adsorbate"]
        e_ref, origin = refs[ads]
        cands, structures = [], []
        for (a, site, _, _), (res, flags, final_site) in zip(
            placements, evaluated, strict=True
        ):
            if a != ads:
                continue
            e = res.energy
            cands.append(
                {
                    "site": site,
                    "final_site": final_site,
                    "energy": e,
                    "adsorption_energy": None if e is None else e - e_host - e_ref,
                    "anomalies": flags,
                    "converged": res.converged,
                    "error": res.error,
                }
            )
            structures.append(
                AseAtomsAdaptor.get_structure(res.atoms) if res.atoms else None
            )
        valid = [
            c
            for c in cands
            if c["energy"] is not None
            and not set(c["anomalies"]) & set(EXCLUDING)
            and c["converged"]
        ]
        n_anom = sum(1 for c in cands if set(c["anomalies"]) & set(EXCLUDING))
        common = dict(
            reference_energy=e_ref,
            reference_description=origin,
            host_energy=e_host,
            n_candidates=len(cands),
            n_anomalous=n_anom,
            candidates=cands,
            relaxed_structures=structures,
            **extra,
        )
        if not valid:
            docs.append(
                maker.failed(
                    target,
                    ctx,
                    "no valid candidate (all anomalous, unconverged or failed)",
                    **common,
                    error_type="NoValidCandidate",
                )
            )
            continue
        best = min(valid, key=lambda c: c["adsorption_energy"])
        docs.append(
            maker.doc(
                target,
                ctx,
                **common,
                state="completed",
                site=best["final_site"] or best["site"],
                adsorption_energy=best["adsorption_energy"],
            )
        )
    return docs


def image_warnings(built: dict, cutoff: float) -> list[str]:
    """A warning if the adsorbate sees its own periodic image (within ``cutoff``)."""
    distance = built["image_distance"]
    if distance >= cutoff:
        return []
    return [
        f"the adsorbate is {distance:.2f} Å from its periodic image, within the "
        f"model's {cutoff:g} Å cutoff: the energy includes adsorbate-adsorbate "
        f"interaction at {built['coverage']:.3g} ML; use a larger supercell or "
        "min_lateral"
    ]


class FrameworkInput:
    """A Maker whose inputs are framework files (CIF), read in the job.

    Paths travel as strings; ``resolve`` reads, checks and repeats each to
    ``min_length`` Å per axis, or returns its error as the input's failure.
    """

    min_length: float

    def make(self, frameworks, labels=None, sources=None, tasks=None):
        """One batched job for all frameworks; one document per guest."""
        if isinstance(frameworks, list):
            frameworks = [str(f) for f in frameworks]
        else:
            frameworks = str(frameworks)
        return super().make(frameworks, labels, sources, tasks)

    def resolve(self, path, label) -> Item:
        """The framework read from its file (repeated to ``min_length``)."""
        label = label or Path(str(path)).stem
        try:
            host = read_framework(str(path), self.min_length)
        except ValueError as err:
            return Item(
                "unknown",
                "unknown",
                label,
                "unknown",
                error=str(err),
                error_type="InvalidFramework",
            )
        structure = AseAtomsAdaptor.get_structure(host)
        sid = structure_id(structure)
        formula = structure.composition.reduced_formula
        return Item(formula, sid, label, sid, structure=structure, source=host)


def check_adsorbates(names: list[str], what: str) -> list[str]:
    """Canonical adsorbate names; unknown or repeated (in any case) ones raise."""
    known = [get_adsorbate(n).name for n in names]
    seen: dict[str, str] = {}
    for given, name in zip(names, known, strict=True):
        if name in seen:
            raise ValueError(
                f"{what}: {given!r} repeats {seen[name]!r} (names are case-insensitive)"
            )
        seen[name] = given
    if not known:
        raise ValueError(f"{what}: give at least one")
    return known


def check_miller(indices, key: str) -> list[list[int]]:
    """Miller indices as lists of three integers, not all zero (errors name
    the spec ``key``)."""
    out = []
    for m in indices:
        if (
            not isinstance(m, (list, tuple))
            or len(m) != 3
            or not all(isinstance(i, (int, np.integer)) for i in m)
        ):
            raise ValueError(f"{key}: {m!r} is not three integers [h, k, l]")
        if not any(m):
            raise ValueError(f"{key}: (0, 0, 0) is not a surface")
        out.append([int(i) for i in m])
    if len({tuple(m) for m in out}) != len(out):
        raise ValueError(f"{key} has duplicates: {out}")
    if not out:
        raise ValueError(f"{key}: give at least one surface")
    return out


def per_adsorbate(maker, item, pot, task, names, host, miller=None) -> list[Target]:
    """One target per adsorbate of ``names`` on ``host`` (a surface or a MOF)."""
    settings = maker_settings(maker)
    targets = []
    for ads in names:
        part = {"adsorbate": ads} | ({"miller_index": miller} if miller else {})
        proto = protocol(maker.property, pot, task, settings, item.on, part)
        extra = {
            "host": host,
            "miller_index": miller,
            "adsorbate": ads,
            "reference_scheme": maker.reference_scheme,
        }
        targets.append(
            Target(item.formula, item.structure_id, item.label, proto, extra)
        )
    return targets


def _plot(
    docs: list[AdsorptionDocument], folder: str, label: str, sid: str, model: str
) -> str:
    """Every candidate's E_ads per adsorbate, titled with the host and
    ``model`` (the model and task)."""
    plt, path = start_plot(folder, f"{alnum_name(label)}_{sid}_adsorption.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, doc in enumerate(docs):
        for c in doc.candidates:
            if c["adsorption_energy"] is None:
                continue
            bad = bool(set(c["anomalies"]) & set(EXCLUDING))
            ax.scatter(
                k,
                c["adsorption_energy"],
                marker="x" if bad else "o",
                color="grey" if bad else "C0",
            )
            ax.annotate(
                c["final_site"] or c["site"],
                (k, c["adsorption_energy"]),
                fontsize=7,
                xytext=(4, 0),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(docs)), [d.adsorbate for d in docs])
    ax.set_xlabel("adsorbate")
    ax.set_ylabel("adsorption energy (eV)")
    ax.set_title(
        f"{label}: adsorption sites, {model}\n(x: anomalous, excluded)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def _with_plot(docs, plot_dir, label, sid, model: str) -> list:
    """Attach the host's candidates plot to its documents."""
    if plot_dir and docs:
        path = _plot(docs, plot_dir, label, sid, model)
        for d in docs:
            d.plots = [path]
    return docs


def check_scheme(maker) -> None:
    """Raise ValueError unless ``maker.reference_scheme`` is gas or oc20."""
    if maker.reference_scheme not in ("gas", "oc20"):
        raise ValueError(
            f"{maker.spec_key('reference_scheme')} must be 'gas' or 'oc20', "
            f"got {maker.reference_scheme!r}"
        )


@accepts_old_names
@dataclass
class SlabAdsorptionMaker(PropertyMaker):
    """Adsorption energies of molecules on metal surfaces.

    The bulk is relaxed with the same model (``relax_bulk``); slabs are cut
    for each Miller index by the ``slab`` protocol; adsorbates are placed on every
    unique site (plus ``n_random`` random ones); the clean slab, all
    placements and the gas references are relaxed in one batch per surface.
    One document per surface and adsorbate.

    Parameters
    ----------
    miller_indices : list of [h, k, l]
        Surfaces (three integers each, not all zero).
    adsorbates : list of str
        Adsorbate names (see :data:`~sevenomni_flows.adsorption.ADSORBATES`),
        case-insensitive, each once.
    slab : SlabProtocol, preset name or mapping
        Layers, fixed layers, lateral size and vacuum (see
        :mod:`~sevenomni_flows.adsorption.slab_protocol`); default the
        ``converged`` preset.  Each document records the slab as built, and
        warns when the adsorbate is within the model's cutoff of its image.
    reference_scheme : str
        ``"gas"`` (gas-phase molecules) or ``"oc20"`` (atomic references).
    relax : RelaxSettings
        The relaxations of slabs, placements and gas references; optimizer
        ``"lbfgs"`` by default: with the bottom layers fixed it needs about
        3x fewer steps than FIRE on metal surfaces
        (``benchmarks/relax_optimizers.py``).
    relax_bulk : bool
        Relax the bulk first (a screening passes its relaxed material and
        sets this False).
    bulk_relax : RelaxSettings
        That bulk relaxation (cell too), as a :class:`RelaxMaker`.
    """

    name: str = "slab adsorption"
    miller_indices: list[list[int]] = field(default_factory=lambda: [[1, 1, 1]])
    adsorbates: list[str] = field(default_factory=lambda: ["CO", "O", "H", "OH"])
    slab: SlabProtocol = field(default_factory=lambda: SlabProtocol(preset="converged"))
    n_random: int = 0
    reference_scheme: str = "gas"
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(
            fmax=0.05, max_steps=300, optimizer="lbfgs"
        )
    )
    relax_bulk: bool = True
    bulk_relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(
            fmax=0.01, max_steps=RelaxMaker.max_steps, optimizer=RelaxMaker.optimizer
        )
    )
    plot_dir: str | None = None

    property: ClassVar[str] = "adsorption"
    document: ClassVar[type] = AdsorptionDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True
    # in a screening the bulk is the relaxed material
    spec_fixed: ClassVar[dict] = {"relax_bulk": False}

    def __post_init__(self):
        super().__post_init__()
        self.miller_indices = check_miller(
            self.miller_indices, self.spec_key("miller_indices")
        )
        self.adsorbates = check_adsorbates(self.adsorbates, self.spec_key("adsorbates"))
        check_scheme(self)

    def make(self, bulk, labels=None, sources=None, tasks=None):
        """Bulk relaxation (with ``relax_bulk``), then the surfaces' job."""
        if not self.relax_bulk:
            return super().make(bulk, labels, sources, tasks)
        bulk_relax = self.bulk_relax.model_dump()
        relaxer = RelaxMaker(settings=self.settings, **bulk_relax)
        rj = relaxer.make(bulk, labels, tasks=tasks)
        ads = super().make(rj.output, labels, tasks=tasks)
        return Flow([rj, ads], name=self.name)

    def targets(self, item, pot, task):
        """One document per surface and adsorbate."""
        out = []
        for miller in self.miller_indices:
            host = f"{item.formula}({''.join(map(str, miller))})"
            out += per_adsorbate(self, item, pot, task, self.adsorbates, host, miller)
        return out

    def compute(self, items, targets, ctx):
        """Each material's surfaces in turn; a failing surface fails alone."""
        out = []
        for item, owed in zip(items, targets, strict=True):
            docs = []
            try:
                check_metal(item.structure, item.label)
            except ValueError as err:
                out.append(err)
                continue
            for miller in self.miller_indices:
                mine = [t for t in owed if t.extra["miller_index"] == miller]
                try:
                    docs += self.surface(item, miller, mine, ctx)
                except Exception as err:  # this surface fails alone
                    docs += [self.failed(t, ctx, err) for t in mine]
            out.append(docs)
        return out

    def surface(self, item, miller, targets, ctx) -> list[AdsorptionDocument]:
        """Every adsorbate on one surface of one material, in one batch."""
        slab = build_slab(item.structure, tuple(miller), self.slab)
        built = slab.info["slab"]
        sites = find_sites(slab) + random_sites(slab, self.n_random)
        placements = []
        for name in self.adsorbates:
            for site in sites:
                atoms, idx = place(slab, get_adsorbate(name), site)
                placements.append((name, site["label"], atoms, idx))
        refs, [(host_res, evaluated)] = evaluate_candidates(
            self, ctx, [(slab, placements, sites)], True
        )
        docs = _documents(
            self,
            targets,
            ctx,
            placements,
            evaluated,
            host_res,
            refs,
            slab=built,
            warnings=image_warnings(built, ctx.pot.cutoff),
        )
        host = targets[0].extra["host"]
        title = model_title(ctx, targets[0])
        return _with_plot(docs, self.plot_dir, host, item.structure_id, title)


@accepts_old_names
@dataclass
class MofAdsorptionMaker(FrameworkInput, PropertyMaker):
    """Adsorption energies of guests (CO2, H2O, N2, CH4, H2, ...) in a MOF.

    Inputs are framework files (CIF).  Candidates: open metal sites and
    random insertions into the pores (rejected on overlap); relaxed with the
    framework fixed (default) or free, together with the empty framework and
    the gas references.  One document per guest.  The default optimiser is
    L-BFGS: with the framework fixed only the guest moves, on a flat surface
    where FIRE takes about 5x more steps (``benchmarks/relax_optimizers.py``).
    """

    name: str = "mof adsorption"
    guests: list[str] = field(default_factory=lambda: list(DEFAULT_GUESTS))
    n_random: int = 3
    open_metal_sites: bool = True
    max_metal_sites: int = 1
    fix_framework: bool = True
    min_length: float = MIN_LENGTH
    reference_scheme: str = "gas"
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(
            fmax=0.05, max_steps=500, optimizer="lbfgs"
        )
    )
    seed: int = 0
    plot_dir: str | None = None

    property: ClassVar[str] = "adsorption"
    document: ClassVar[type] = AdsorptionDocument
    stage: ClassVar[str] = "framework"
    section: ClassVar[str] = "mof"
    spec_exclude: ClassVar[tuple[str, ...]] = ("guests",)  # per framework

    def __post_init__(self):
        super().__post_init__()
        self.guests = check_adsorbates(self.guests, "guests")
        check_scheme(self)

    def targets(self, item, pot, task):
        """One document per guest."""
        return per_adsorbate(self, item, pot, task, self.guests, item.label)

    def compute(self, items, targets, ctx):
        """Each framework's guests in one batch."""
        out = []
        for item, owed in zip(items, targets, strict=True):
            try:
                out.append(self.framework(item, owed, ctx))
            except Exception as err:  # this framework fails alone
                out.append(err)
        return out

    def framework(self, item, targets, ctx) -> list[AdsorptionDocument]:
        """All guests in one framework."""
        from ase.constraints import FixAtoms

        host = item.source.copy()
        if self.fix_framework:
            host.set_constraint(FixAtoms(indices=list(range(len(host)))))
        placements = []
        for name in self.guests:
            ads = get_adsorbate(name)
            for k, (site, guest) in enumerate(
                guest_placements(
                    host,
                    ads,
                    self.n_random,
                    self.open_metal_sites,
                    self.max_metal_sites,
                    self.seed,
                )
            ):
                atoms = host.copy() + guest
                atoms.set_constraint(
                    host.constraints[0].copy() if host.constraints else []
                )
                idx = np.arange(len(host), len(atoms))
                placements.append(
                    (ads.name, f"{site}-{k}" if site == "random" else site, atoms, idx)
                )
        refs, [(host_res, evaluated)] = evaluate_candidates(
            self, ctx, [(host, placements, None)], False
        )
        docs = _documents(self, targets, ctx, placements, evaluated, host_res, refs)
        title = model_title(ctx, targets[0])
        return _with_plot(docs, self.plot_dir, item.label, item.structure_id, title)
