"""Adsorption energies on metal surfaces and in metal-organic frameworks.

For one host, the empty host, every placement of every adsorbate and the
gas-phase references are relaxed together in one batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from jobflow import Flow, Maker, job
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.batch import relax

from ..adsorption.adsorbates import get_adsorbate
from ..adsorption.anomalies import EXCLUDING, classify
from ..adsorption.mofs import guest_placements, read_framework
from ..adsorption.references import needed_molecules, reference
from ..adsorption.surfaces import (
    build_slab,
    check_metal,
    find_sites,
    place,
    random_sites,
)
from ..schemas import AdsorptionDocument, Provenance, structure_id
from .base import ModelSettings, maker_settings, pick, resolve_input, settings_key
from .relax import RelaxMaker

__all__ = ["MofAdsorptionMaker", "SlabAdsorptionMaker", "evaluate_candidates"]

GAS_BOX = 15.0  # Å, cubic box of the gas references (non-periodic)


def _gas(name: str) -> Atoms:
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
    host: Atoms,
    placements: list[tuple[str, str, Atoms, np.ndarray]],
    surface: bool,
    sites: list[dict] | None = None,
) -> tuple[dict, dict, list]:
    """Relax host, placements and gas references in one batch.

    ``placements`` are ``(adsorbate, site, atoms, adsorbate indices)``.
    Returns the host result, the references per adsorbate, and per
    placement its relaxation result and anomaly flags.
    """
    pot, task = maker.settings.potential()
    adsorbates = sorted({p[0] for p in placements})
    molecules = sorted(
        needed_molecules(
            [get_adsorbate(a) for a in adsorbates], maker.reference_scheme, task
        )
    )
    inputs = [host] + [p[2] for p in placements] + [_gas(m) for m in molecules]
    results = relax(
        inputs, model=pot, task=task, fmax=maker.fmax, max_steps=maker.max_steps
    )
    host_res = results[0]
    mol_res = dict(zip(molecules, results[1 + len(placements) :], strict=True))
    bad = [f"{m}: {r.error}" for m, r in mol_res.items() if r.error]
    if host_res.error or bad:
        raise RuntimeError(f"reference relaxation failed: {host_res.error or bad[0]}")
    energies = {m: r.energy for m, r in mol_res.items()}
    refs = {
        a: reference(get_adsorbate(a), maker.reference_scheme, energies, task)
        for a in adsorbates
    }
    evaluated = []
    n_host = len(host)
    for (ads, site, atoms, idx), res in zip(placements, results[1:], strict=False):
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
            np.arange(n_host),
            host_res.atoms,
            surface,
            initial_site=site if surface and site != "random" else None,
            final_site=final_site if site != "random" else None,
        )
        evaluated.append((res, flags, final_site))
    return {"pot": pot, "task": task, "host": host_res}, refs, evaluated


def _documents(maker, label, info, miller, placements, evaluated, host_out, refs):
    pot, task = host_out["pot"], host_out["task"]
    key = settings_key("adsorption", pot.sha256, task, maker_settings(maker))
    base = {
        "formula": info["formula"],
        "structure_id": info["structure_id"],
        "model": Provenance.from_potential(pot, task),
        "host": label,
        "miller_index": list(miller) if miller is not None else None,
        "reference_scheme": maker.reference_scheme,
        "settings": json.loads(json.dumps(maker_settings(maker), default=str)),
        "settings_key": key,
    }
    e_host = host_out["host"].energy
    docs = []
    for ads in dict.fromkeys(p[0] for p in placements):
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
            base,
            adsorbate=ads,
            reference_energy=e_ref,
            reference_description=origin,
            host_energy=e_host,
            n_candidates=len(cands),
            n_anomalous=n_anom,
            candidates=cands,
            relaxed_structures=structures,
        )
        if not valid:
            docs.append(
                AdsorptionDocument(
                    **common,
                    state="failed",
                    error="no valid candidate (all anomalous, unconverged or failed)",
                )
            )
            continue
        best = min(valid, key=lambda c: c["adsorption_energy"])
        docs.append(
            AdsorptionDocument(
                **common,
                state="completed",
                site=best["final_site"] or best["site"],
                adsorption_energy=best["adsorption_energy"],
            )
        )
    return docs


def _failed(maker, label, info, miller, ads_names, error):
    pot, task = maker.settings.potential()
    key = settings_key("adsorption", pot.sha256, task, maker_settings(maker))
    return [
        AdsorptionDocument(
            formula=info.get("formula", "unknown"),
            structure_id=info.get("structure_id", "unknown"),
            model=Provenance.from_potential(pot, task),
            host=label,
            miller_index=list(miller) if miller else None,
            adsorbate=a,
            reference_scheme=maker.reference_scheme,
            state="failed",
            error=error,
            settings_key=key,
        )
        for a in ads_names
    ]


def _plot(docs: list[AdsorptionDocument], folder: str, label: str, sid: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(folder).mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() else "_" for c in label)
    path = Path(folder) / f"{safe}_{sid}_adsorption.png"
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
    ax.set_ylabel("adsorption energy (eV)")
    ax.set_title(f"{label}: candidates (x: anomalous, excluded)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def _finish(docs, docs_bad, plot_dir, label, info, requested) -> list:
    """Attach the host's plot and order the documents as requested."""
    if plot_dir and docs:
        path = _plot(docs, plot_dir, label, info["structure_id"])
        for d in docs:
            d.plots = [path]
    order = {a.lower(): i for i, a in enumerate(requested)}
    return sorted(docs + docs_bad, key=lambda d: order.get(d.adsorbate.lower(), 0))


@dataclass
class SlabAdsorptionMaker(Maker):
    """Adsorption energies of molecules on metal surfaces.

    The bulk is relaxed with the same model; slabs are cut for each Miller
    index (bottom half fixed); adsorbates are placed on every unique site
    (plus ``n_random`` random ones); the clean slab, all placements and the
    gas references are relaxed in one batch per surface.

    Parameters
    ----------
    miller_indices : list of [h, k, l]
        Surfaces.
    adsorbates : list of str
        Adsorbate names (see :data:`~sevenomni_flows.adsorption.ADSORBATES`).
    reference_scheme : str
        ``"gas"`` (gas-phase molecules) or ``"oc20"`` (atomic references).
    """

    name: str = "slab adsorption"
    settings: ModelSettings = field(default_factory=ModelSettings)
    miller_indices: list[list[int]] = field(default_factory=lambda: [[1, 1, 1]])
    adsorbates: list[str] = field(default_factory=lambda: ["CO", "O", "H", "OH"])
    min_slab_size: float = 7.0
    min_vacuum: float = 12.0
    min_lateral: float = 7.0
    fix_fraction: float = 0.5
    n_random: int = 0
    reference_scheme: str = "gas"
    fmax: float = 0.05
    max_steps: int = 300
    relax_bulk: bool = True
    plot_dir: str | None = None

    def make(self, bulk, label: str | None = None) -> Flow:
        """Bulk relaxation, then a batched job per surface, a document per adsorbate."""
        jobs = []
        source = bulk
        if self.relax_bulk:
            rj = RelaxMaker(settings=self.settings, fmax=0.01).make(bulk)
            jobs.append(rj)
            source = rj.output
        for miller in self.miller_indices:
            surf = slab_adsorption_job(self, source, list(miller), label)
            surf.name = f"adsorption {label or ''}({''.join(map(str, miller))})"
            jobs.append(surf)
            for k, ads in enumerate(self.adsorbates):
                one = pick(surf.output, k)
                one.name = f"{surf.name} {ads}"
                jobs.append(one)
        return Flow(jobs, name=self.name)

    def run(self, bulk, miller, label: str | None = None) -> list[AdsorptionDocument]:
        """The surface calculation itself (no workflow engine needed)."""
        structure, info = resolve_input(bulk)
        hkl = "".join(str(i) for i in miller)
        host_label = f"{info['formula']}({hkl})"
        if structure is None:
            return _failed(
                self, host_label, info, miller, self.adsorbates, info["error"]
            )
        try:
            check_metal(structure, label or info["formula"])
        except ValueError as err:
            return _failed(self, host_label, info, miller, self.adsorbates, str(err))
        known, docs_bad = [], []
        for name in self.adsorbates:
            try:
                known.append(get_adsorbate(name).name)
            except ValueError as err:
                docs_bad += _failed(self, host_label, info, miller, [name], str(err))
        slab = build_slab(
            structure,
            tuple(miller),
            self.min_slab_size,
            self.min_vacuum,
            self.min_lateral,
            self.fix_fraction,
        )
        sites = find_sites(slab) + random_sites(slab, self.n_random)
        placements = []
        for name in known:
            for site in sites:
                atoms, idx = place(slab, get_adsorbate(name), site)
                placements.append((name, site["label"], atoms, idx))
        host_out, refs, evaluated = evaluate_candidates(
            self, slab, placements, True, sites
        )
        docs = _documents(
            self, host_label, info, miller, placements, evaluated, host_out, refs
        )
        return _finish(docs, docs_bad, self.plot_dir, host_label, info, self.adsorbates)


@job(data=["relaxed_structures"])
def slab_adsorption_job(maker: SlabAdsorptionMaker, bulk, miller, label=None):
    """Job wrapper of :meth:`SlabAdsorptionMaker.run` (a list of documents)."""
    return maker.run(bulk, miller, label)


@dataclass
class MofAdsorptionMaker(Maker):
    """Adsorption energies of guests (CO2, H2O, N2, CH4, H2, ...) in a MOF.

    Candidates: open metal sites and random insertions into the pores
    (rejected on overlap); relaxed with the framework fixed (default) or
    free, together with the empty framework and the gas references.
    """

    name: str = "mof adsorption"
    settings: ModelSettings = field(default_factory=ModelSettings)
    guests: list[str] = field(default_factory=lambda: ["CO2", "H2O", "N2"])
    n_random: int = 3
    open_metal_sites: bool = True
    max_metal_sites: int = 1
    fix_framework: bool = True
    min_length: float = 12.0
    reference_scheme: str = "gas"
    fmax: float = 0.05
    max_steps: int = 500
    seed: int = 0
    plot_dir: str | None = None

    def make(self, framework: str, label: str | None = None) -> Flow:
        """One batched job for all guests; one stored document per guest."""
        main = mof_adsorption_job(self, str(framework), label)
        main.name = f"adsorption {label or Path(framework).stem}"
        jobs = [main]
        for k, g in enumerate(self.guests):
            one = pick(main.output, k)
            one.name = f"{main.name} {g}"
            jobs.append(one)
        return Flow(jobs, name=self.name)

    def run(self, framework: str, label: str | None = None) -> list[AdsorptionDocument]:
        """The calculation itself (no workflow engine needed)."""
        label = label or Path(framework).stem
        try:
            host = read_framework(framework, self.min_length)
        except ValueError as err:
            info = {"formula": "unknown", "structure_id": "unknown"}
            return _failed(self, label, info, None, self.guests, str(err))
        structure = AseAtomsAdaptor.get_structure(host)
        info = {
            "formula": structure.composition.reduced_formula,
            "structure_id": structure_id(structure),
        }
        if self.fix_framework:
            host.set_constraint(FixAtoms(indices=list(range(len(host)))))
        placements, docs_bad = [], []
        for name in self.guests:
            try:
                ads = get_adsorbate(name)
            except ValueError as err:
                docs_bad += _failed(self, label, info, None, [name], str(err))
                continue
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
        host_out, refs, evaluated = evaluate_candidates(self, host, placements, False)
        docs = _documents(
            self, label, info, None, placements, evaluated, host_out, refs
        )
        return _finish(docs, docs_bad, self.plot_dir, label, info, self.guests)


@job(data=["relaxed_structures"])
def mof_adsorption_job(maker: MofAdsorptionMaker, framework: str, label=None):
    """Job wrapper of :meth:`MofAdsorptionMaker.run` (a list of documents)."""
    return maker.run(framework, label)
