"""How adsorption energies converge with slab thickness and lateral size.

One batched relaxation holds, for every surface of a material, the clean
slab and every site of every adsorbate at each number of layers and each
supercell, plus the gas references.  The documents tabulate E_ads per
setting and its deviation from the thickest, widest slab, so a protocol can
be chosen, and shown to hold, before a screening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import Field

from ..adsorption.adsorbates import get_adsorbate
from ..adsorption.anomalies import EXCLUDING
from ..adsorption.slab_protocol import SlabProtocol
from ..adsorption.surfaces import build_slab, check_metal, find_sites, place
from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import alnum_name, start_plot
from ..jobs.settings import RelaxSettings, accepts_old_names
from ..schemas import ResultDocument, quantity
from .adsorption import (
    check_adsorbates,
    check_miller,
    check_scheme,
    evaluate_candidates,
    per_adsorbate,
)

__all__ = ["SlabConvergenceMaker"]


class SlabConvergenceDocument(ResultDocument):
    """E_ads of one adsorbate on one surface against slab thickness and width."""

    property: str = "slab_convergence"
    columns: ClassVar[tuple[str, ...]] = (
        "host",
        "adsorbate",
        "adsorption_energy",
        "max_deviation",
    )
    host: str = Field(description="Formula and Miller index")
    miller_index: list[int] | None = Field(None, description="Surface Miller index")
    adsorbate: str = Field(description="Adsorbate name")
    reference_scheme: str = Field(description="'gas' (molecules) or 'oc20' (atomic)")
    free_layers: int | None = Field(None, description="Top layers relaxed")
    vacuum: float | None = quantity("Vacuum", "Å")
    rows: list[dict] = Field(
        default_factory=list,
        description="Per setting: layers, fixed_layers, supercell [n, m], "
        "coverage (ML), image_distance (Å), adsorption_energy (eV, lowest valid "
        "site), site, deviation (eV, from the largest setting)",
    )
    adsorption_energy: float | None = quantity(
        "On the thickest slab of the largest supercell", "eV"
    )
    max_deviation: float | None = quantity(
        "Largest |E_ads - adsorption_energy| over the rows", "eV"
    )


@accepts_old_names
@dataclass
class SlabConvergenceMaker(PropertyMaker):
    """E_ads at several slab thicknesses and lateral sizes, in one batch.

    For each surface and adsorbate, one document with a row per setting
    (``layers`` x ``supercells``): the lowest valid adsorption energy over
    the unique sites, its site, and its deviation from the thickest slab on
    the largest supercell.  The top ``free_layers`` layers relax at every
    thickness, so only the fixed bulk below them grows.

    Parameters
    ----------
    layers : list of int
        Slab thicknesses in atomic layers, each above ``free_layers``.
    supercells : list of [n, m]
        Lateral sizes, repeats of the primitive surface cell.
    """

    name: str = "slab convergence"
    miller_indices: list[list[int]] = field(default_factory=lambda: [[1, 1, 1]])
    adsorbates: list[str] = field(default_factory=lambda: ["O"])
    layers: list[int] = field(default_factory=lambda: [3, 4, 5, 6])
    supercells: list[list[int]] = field(default_factory=lambda: [[2, 2], [3, 3]])
    free_layers: int = 2
    vacuum: float = 15.0
    reference_scheme: str = "gas"
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(
            fmax=0.05, max_steps=300, optimizer="lbfgs"
        )
    )
    plot_dir: str | None = None

    property: ClassVar[str] = "slab_convergence"
    document: ClassVar[type] = SlabConvergenceDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        what = self.property
        self.miller_indices = check_miller(
            self.miller_indices, self.spec_key("miller_indices")
        )
        self.adsorbates = check_adsorbates(self.adsorbates, self.spec_key("adsorbates"))
        check_scheme(self)
        if not self.layers or not self.supercells:
            raise ValueError(f"{what}: give at least one of layers and of supercells")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"{what}.layers has duplicates: {self.layers}")
        # every setting must be a valid protocol; errors name the setting
        for n in self.layers:
            for cell in self.supercells:
                try:
                    self.protocol(n, cell)
                except ValueError as err:
                    raise ValueError(f"{what}: {err}") from None
                if n <= self.free_layers:
                    raise ValueError(
                        f"{what}.layers: {n} is not more than free_layers "
                        f"({self.free_layers}); the slab needs a fixed bottom"
                    )

    def protocol(self, layers: int, supercell: list[int]) -> SlabProtocol:
        """The slab protocol of one setting."""
        return SlabProtocol.checked(
            {
                "layers": layers,
                "free_layers": self.free_layers,
                "supercell": tuple(supercell),
                "vacuum": self.vacuum,
            },
            f"layers {layers}, supercell {list(supercell)}",
        )

    def targets(self, item, pot, task):
        """One document per surface and adsorbate."""
        out = []
        for miller in self.miller_indices:
            host = f"{item.formula}({''.join(map(str, miller))})"
            out += per_adsorbate(self, item, pot, task, self.adsorbates, host, miller)
        return out

    def compute(self, items, targets, ctx):
        """All settings of all surfaces of a material in one batch."""
        out = []
        for item, owed in zip(items, targets, strict=True):
            try:
                check_metal(item.structure, item.label)
                out.append(self.material(item, owed, ctx))
            except Exception as err:  # this material fails alone
                out.append(err)
        return out

    def material(self, item, targets, ctx) -> list[SlabConvergenceDocument]:
        """Every setting of every surface of one material."""
        groups, settings = [], []
        for miller in self.miller_indices:
            for n in self.layers:
                for cell in self.supercells:
                    slab = build_slab(
                        item.structure, tuple(miller), self.protocol(n, cell)
                    )
                    sites = find_sites(slab)
                    placements = [
                        (name, site["label"], *place(slab, get_adsorbate(name), site))
                        for name in self.adsorbates
                        for site in sites
                    ]
                    groups.append((slab, placements, sites))
                    settings.append((miller, slab.info["slab"]))
        refs, evaluated = evaluate_candidates(self, ctx, groups, True)
        docs = []
        for target in targets:
            ads = target.extra["adsorbate"]
            rows = []
            for (miller, built), (host_res, results), (_, placements, _) in zip(
                settings, evaluated, groups, strict=True
            ):
                if miller != target.extra["miller_index"]:
                    continue
                rows.append(_row(ads, built, host_res, placements, results, refs))
            docs.append(self.document_for(target, ctx, rows))
        if self.plot_dir:
            for doc in docs:
                title = model_title(ctx, targets[0])
                doc.plots = [_plot(doc, self.plot_dir, item.structure_id, title)]
        return docs

    def document_for(self, target, ctx, rows) -> SlabConvergenceDocument:
        """The table of one surface and adsorbate, against its largest setting."""
        valid = [r for r in rows if r["adsorption_energy"] is not None]
        largest = max(
            rows, key=lambda r: (r["supercell"][0] * r["supercell"][1], r["layers"])
        )
        common = dict(
            rows=rows,
            free_layers=self.free_layers,
            vacuum=self.vacuum,
        )
        if largest["adsorption_energy"] is None:
            return self.failed(
                target,
                ctx,
                f"no valid candidate on the largest slab ({largest['layers']} "
                f"layers, {largest['supercell']})",
                **common,
                error_type="NoValidCandidate",
            )
        e_ref = largest["adsorption_energy"]
        for r in valid:
            r["deviation"] = r["adsorption_energy"] - e_ref
        return self.doc(
            target,
            ctx,
            **common,
            state="completed",
            adsorption_energy=e_ref,
            max_deviation=max(abs(r["deviation"]) for r in valid),
        )


def _row(ads, built, host_res, placements, results, refs) -> dict:
    """One setting: the lowest valid adsorption energy of ``ads`` over sites."""
    e_ref = refs[ads][0]
    best = None
    for (name, site, _, _), (res, flags, final_site) in zip(
        placements, results, strict=True
    ):
        if name != ads or res.error or not res.converged:
            continue
        if set(flags) & set(EXCLUDING):
            continue
        e = res.energy - host_res.energy - e_ref
        if best is None or e < best[0]:
            best = (e, final_site or site)
    return {
        "layers": built["layers"],
        "fixed_layers": built["fixed_layers"],
        "supercell": built["supercell"],
        "coverage": built["coverage"],
        "image_distance": built["image_distance"],
        "adsorption_energy": None if best is None else best[0],
        "site": None if best is None else best[1],
        "deviation": None,
    }


def _plot(doc: SlabConvergenceDocument, folder: str, sid: str, model: str) -> str:
    """E_ads against slab thickness, one line per lateral cell."""
    safe = alnum_name(f"{doc.host}_{doc.adsorbate}")
    plt, path = start_plot(folder, f"{safe}_{sid}_slab_convergence.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for cell in dict.fromkeys(tuple(r["supercell"]) for r in doc.rows):
        mine = [r for r in doc.rows if tuple(r["supercell"]) == cell]
        mine = [r for r in mine if r["adsorption_energy"] is not None]
        ax.plot(
            [r["layers"] for r in mine],
            [r["adsorption_energy"] for r in mine],
            "o-",
            label=f"p({cell[0]}x{cell[1]})",
        )
    ax.set_xticks(sorted({r["layers"] for r in doc.rows}))
    ax.set_xlabel("slab thickness (layers)")
    ax.set_ylabel(f"E_ads({doc.adsorbate}) (eV)")
    ax.set_title(
        f"{doc.host}: E_ads of {doc.adsorbate} (top {doc.free_layers} layers free), "
        f"{model}",
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
