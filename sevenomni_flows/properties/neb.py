"""Barriers of many hops at once: end points built, relaxed, then batched CI-NEB.

A band is described by a plain dict (a spec's ``neb.bands`` entry):

- ``{"kind": "vacancy", "structure": bulk}``: a vacancy in ``bulk``
  (repeated to ``min_length``) hops to the nearest neighbour site;
- ``{"kind": "surface", "structure": bulk, "miller": [1, 1, 1],
  "adsorbate": "O", "start": "fcc", "end": "hcp"}``: an adsorbate moves
  between the nearest sites of the two kinds on the slab of the adsorption
  flow (:class:`~sevenomni_flows.adsorption.SlabProtocol`);
- ``{"kind": "path", "initial": structure, "final": structure}``: the two
  end points as given.

End points of every band are relaxed together (fixed atoms kept), then all
bands run in one batched :func:`~sevenomni_core.batch.neb`.  One document
per band (``property: "neb"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from pydantic import Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.options import default

from ..adsorption.adsorbates import get_adsorbate
from ..adsorption.slab_protocol import SlabProtocol
from ..adsorption.surfaces import build_slab, find_sites, place
from ..jobs.base import Item, Target, as_structure, maker_settings, protocol, reuse_key
from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import start_plot
from ..jobs.settings import RelaxSettings, accepts_old_names
from ..schemas import ResultDocument, bulky, quantity, structure_id
from .md.maker import safe_name, supercell_for

__all__ = ["NebMaker", "end_points"]

KINDS = ("vacancy", "surface", "path")


def _vacancy(bulk: Atoms, min_length: float) -> tuple[Atoms, Atoms]:
    cell = supercell_for(bulk, min_length)
    d = cell.get_distances(0, range(1, len(cell)), mic=True)
    j = 1 + int(np.argmin(d))
    first, last = cell.copy(), cell.copy()
    last.positions[j] = cell.positions[0]
    del first[0]
    del last[0]
    return first, last


def _surface(band: dict, slab_protocol: SlabProtocol) -> tuple[Atoms, Atoms]:
    bulk = as_structure(band["structure"])
    slab = build_slab(bulk, tuple(band["miller"]), slab_protocol)
    sites = find_sites(slab)
    ads = get_adsorbate(band["adsorbate"])
    start = [s for s in sites if s["label"] == band["start"]]
    end = [s for s in sites if s["label"] == band["end"]]
    found = sorted({s["label"] for s in sites})
    for name, group in ((band["start"], start), (band["end"], end)):
        if not group:
            raise ValueError(f"no {name!r} site on this surface; it has {found}")
    a = start[0]
    cell = slab.cell.array[:2, :2]

    def lateral(s):
        d = np.asarray(s["position"][:2]) - np.asarray(a["position"][:2])
        f = np.linalg.solve(cell.T, d)
        return np.linalg.norm((f - np.round(f)) @ cell)

    b = min((s for s in end if lateral(s) > 0.3), key=lateral, default=None)
    if b is None:
        raise ValueError(f"no {band['end']!r} site apart from the start site")
    first, _ = place(slab, ads, a)
    last, _ = place(slab, ads, b)
    return first, last


def end_points(band: dict, min_length: float, slab: SlabProtocol):
    """The two (unrelaxed) end points of a band description."""
    kind = band.get("kind")
    if kind == "vacancy":
        bulk = AseAtomsAdaptor.get_atoms(as_structure(band["structure"]))
        return _vacancy(bulk, min_length)
    if kind == "surface":
        return _surface(band, slab)
    if kind == "path":
        first = AseAtomsAdaptor.get_atoms(as_structure(band["initial"]))
        last = AseAtomsAdaptor.get_atoms(as_structure(band["final"]))
        return first, last
    raise ValueError(f"unknown band kind {kind!r}; choose from {list(KINDS)}")


def _describe(band: dict) -> dict:
    """The band's identity for the reuse key (structures by their ids)."""
    out = {}
    for k, v in band.items():
        if k in ("structure", "initial", "final"):
            out[k] = structure_id(as_structure(v))
        else:
            out[k] = v
    return out


class NebDocument(ResultDocument):
    """One climbing-image NEB band: the barrier of one hop."""

    property: str = "neb"
    columns: ClassVar[tuple[str, ...]] = (
        "barrier",
        "reverse_barrier",
        "reaction_energy",
        "converged",
    )
    band: dict = Field(
        default_factory=dict,
        description="What hops: kind (vacancy, surface or path) and its details",
    )
    barrier: float | None = quantity("Forward barrier", "eV")
    reverse_barrier: float | None = quantity("Reverse barrier", "eV")
    reaction_energy: float | None = quantity("E(final) - E(initial)", "eV")
    energies: list[float] = quantity(
        "Profile: each image minus the initial", "eV", default_factory=list
    )
    climbing_image: int | None = Field(None, description="Index of the highest image")
    converged: bool | None = Field(None, description="NEB forces below fmax")
    steps: int = Field(0, description="FIRE steps of the band")
    images: list[Structure] | None = bulky("All images, end points included")


@accepts_old_names
@dataclass
class NebMaker(PropertyMaker):
    """Climbing-image NEB barriers of many bands in one batched job.

    Parameters
    ----------
    n_images : int
        Interior images per band.
    climb : bool
        Climbing image.
    fmax : float
        NEB force threshold, eV/Å.
    max_steps : int
        Most FIRE steps per band.
    spring : float
        Spring constant, eV/Å².
    interpolation : {"idpp", "linear"}
        Initial path.
    relax : RelaxSettings
        Relaxation of the end points (fixed cell, fixed slab layers kept).
    min_length : float
        Vacancy bands: repeat the bulk until every width is at least this, Å.
    slab : SlabProtocol
        Surface bands: how the slab is built (the adsorption flow's).
    plot_dir : str, optional
        Folder for the energy profiles.
    """

    name: str = "neb"
    n_images: int = default("neb", "n_images")
    climb: bool = default("neb", "climb")
    fmax: float = default("neb", "fmax")
    max_steps: int = default("neb", "max_steps")
    spring: float = default("neb", "k")
    interpolation: str = default("neb", "interpolation")
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(
            fmax=0.02, max_steps=500, optimizer="lbfgs"
        )
    )
    min_length: float = 7.0
    slab: SlabProtocol = field(default_factory=lambda: SlabProtocol(preset="converged"))
    plot_dir: str | None = None

    property: ClassVar[str] = "neb"
    document: ClassVar[type] = NebDocument
    stage: ClassVar[str] = "band"

    def __post_init__(self):
        super().__post_init__()
        if self.n_images < 1 or self.max_steps < 1:
            raise ValueError(
                f"{self.spec_key('n_images')} and {self.spec_key('max_steps')} "
                "must be >= 1"
            )
        if not (self.fmax > 0 and self.spring > 0):
            raise ValueError(
                f"{self.spec_key('fmax')} and {self.spec_key('spring')} must be > 0"
            )
        if self.interpolation not in ("idpp", "linear"):
            raise ValueError(
                f"{self.spec_key('interpolation')} must be 'idpp' or 'linear', "
                f"got {self.interpolation!r}"
            )

    def resolve(self, obj: Any, label: str | None) -> Item:
        """A band description; its end points are built here."""
        label = label or "band"
        try:
            band = dict(obj)
            first, last = end_points(band, self.min_length, self.slab)
            ident = _describe(band)
        except Exception as err:  # any bad description fails alone
            return Item(
                "unknown",
                "unknown",
                label,
                "unknown",
                error=f"{label}: {err}",
                error_type=type(err).__name__,
            )
        structure = AseAtomsAdaptor.get_structure(first)
        sid = structure_id(structure)
        on = f"{sid}:{reuse_key(ident)}"
        item = Item(structure.composition.reduced_formula, sid, label, on, structure)
        item.source = (first, last, ident)
        return item

    def targets(self, item, pot, task) -> list[Target]:
        ident = item.source[2] if item.source else {}
        proto = protocol(self.property, pot, task, maker_settings(self), item.on)
        return [
            Target(item.formula, item.structure_id, item.label, proto, {"band": ident})
        ]

    def compute(self, items, targets, ctx):
        """Relax all end points together, then every band in one NEB batch."""
        from sevenomni_core.batch import neb, relax

        ends = [x for it in items for x in it.source[:2]]
        relaxed = relax(
            ends,
            model=ctx.pot,
            task=ctx.task,
            fmax=self.relax.fmax,
            max_steps=self.relax.max_steps,
            optimizer=self.relax.optimizer,
        )
        bands, ready = [], []
        out: list[list] = [[] for _ in items]
        for k, (item, (target,)) in enumerate(zip(items, targets, strict=True)):
            pair = relaxed[2 * k : 2 * k + 2]
            bad = [r.error or "not converged" for r in pair if not r.converged]
            if bad:
                out[k] = [self.failed(target, ctx, f"end point relaxation: {bad[0]}")]
                continue
            first, last = (r.atoms for r in pair)
            for atoms, source in zip((first, last), item.source[:2], strict=True):
                atoms.set_constraint(source.constraints)
            bands.append((first, last))
            ready.append(k)
        results = neb(
            bands,
            model=ctx.pot,
            task=ctx.task,
            n_images=self.n_images,
            climb=self.climb,
            fmax=self.fmax,
            max_steps=self.max_steps,
            k=self.spring,
            interpolation=self.interpolation,
        )
        for k, result in zip(ready, results, strict=True):
            out[k] = [self._document(targets[k][0], ctx, result)]
        return out

    def _document(self, target, ctx, result) -> NebDocument:
        if result.error is not None:
            return self.failed(target, ctx, result.error)
        profile = (result.energies - result.energies[0]).tolist()
        plots = [self._plot(target, ctx, profile)] if self.plot_dir else []
        values = {
            "barrier": result.barrier,
            "reverse_barrier": result.reverse_barrier,
            "reaction_energy": result.reaction_energy,
            "energies": profile,
            "climbing_image": result.climbing_image,
            "converged": result.converged,
            "steps": result.steps,
            "plots": plots,
            "images": [AseAtomsAdaptor.get_structure(a) for a in result.images],
        }
        if not result.converged:
            return self.failed(
                target,
                ctx,
                f"band did not converge within {result.steps} steps "
                f"(fmax {self.fmax} eV/Å)",
                error_type="NotConverged",
                **values,
            )
        return self.doc(target, ctx, state="completed", **values)

    def _plot(self, target, ctx, profile) -> str:
        plt, path = start_plot(
            self.plot_dir, f"{safe_name(target.label)}_{target.key}_neb.png"
        )
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(range(len(profile)), profile, "o-")
        ax.set_xticks(range(len(profile)))
        ax.set_xlabel("image")
        ax.set_ylabel("E - E(initial image) (eV)")
        ax.set_title(f"{target.label}: NEB, {model_title(ctx, target)}", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return str(path)
