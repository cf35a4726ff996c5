"""Surface energies γ(hkl) and the Wulff shape of each material.

The slabs of every facet of every material, and the bulk cells they are
cut from, are relaxed in one batch.  Slabs are built by the adsorption
flow's slab protocol (layers, fixed layers, vacuum, lateral size).  Every
termination with two equivalent faces and the bulk's stoichiometry is
relaxed and a facet's γ is the lowest of them; symmetry-equivalent facets
are one facet; a facet with no such termination, or a negative γ, fails
alone with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from ase.units import J, m
from pydantic import Field
from pymatgen.core import Structure
from pymatgen.core.surface import get_symmetrically_distinct_miller_indices
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..adsorption.slab_protocol import SlabProtocol
from ..adsorption.surfaces import build_slabs, canonical_miller
from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import pyplot, start_plot, visible_colors
from ..jobs.settings import RelaxSettings, accepts_old_names
from ..schemas import ResultDocument, bulky, quantity
from .adsorption import check_miller

if TYPE_CHECKING:
    from pymatgen.analysis.wulff import WulffShape

__all__ = [
    "SurfaceEnergyDocument",
    "SurfaceEnergyMaker",
    "surface_energy",
    "wulff_figure",
]


def conventional(structure):
    """The conventional standard cell Miller indices refer to."""
    return SpacegroupAnalyzer(structure).get_conventional_standard_structure()


#: A facet whose lowest γ (J/m²) is below this fails: a slab more stable
#: than its bulk means the bulk is not stable at the model.
MIN_SURFACE_ENERGY = 0.0

#: eV/Å² in J/m².
J_PER_M2 = (J / m**2) ** -1


def surface_energy(
    slab_energy: float,
    n_atoms: int,
    bulk_energy_per_atom: float,
    area: float,
    unrelaxed_energy: float | None = None,
) -> float:
    """γ in J/m² of a slab with two faces of ``area`` Å² (energies in eV).

    Both faces alike (no fixed layers): ``(E - N e_bulk) / 2A``.  With the
    bottom layers fixed, only the top face relaxed: the bulk-terminated face
    is ``(E_unrelaxed - N e_bulk) / 2A`` and the relaxed one
    ``(E - N e_bulk) / A`` minus that.
    """
    excess = slab_energy - n_atoms * bulk_energy_per_atom
    if unrelaxed_energy is None:
        return excess / (2 * area) * J_PER_M2
    unrelaxed = (unrelaxed_energy - n_atoms * bulk_energy_per_atom) / (2 * area)
    return (excess / area - unrelaxed) * J_PER_M2


class SurfaceEnergyDocument(ResultDocument):
    """γ(hkl) of one material's facets and its Wulff shape."""

    property: str = "surface_energy"
    columns: ClassVar[tuple[str, ...]] = (
        "surface_energies",
        "weighted_surface_energy",
        "wulff_fractions",
    )
    surface_energies: dict[str, float] = quantity(
        'Surface energy per facet "h k l" (the lowest over its terminations)',
        "J/m²",
        default_factory=dict,
    )
    weighted_surface_energy: float | None = quantity(
        "Area-weighted surface energy of the Wulff shape", "J/m²"
    )
    wulff_fractions: dict[str, float] = quantity(
        'Area fraction of each facet "h k l" on the Wulff shape',
        "unitless",
        default_factory=dict,
    )
    bulk_energy_per_atom: float | None = quantity(
        "Relaxed bulk energy per atom", "eV/atom"
    )
    slabs: list[dict] = Field(
        default_factory=list,
        description="Per slab relaxed: miller, shift, layers, fixed_layers, "
        "n_atoms, area (Å²), energy (eV, relaxed), unrelaxed_energy (eV, with "
        "fixed layers), surface_energy (J/m²), converged",
    )
    relaxed_slabs: list[Structure] | None = bulky(
        "Each relaxed slab, in the order of slabs (bottom layers fixed as "
        "selective dynamics)"
    )
    failed_facets: dict[str, str] = Field(
        default_factory=dict,
        description='Per facet "h k l" left out: why (no termination with two '
        "equivalent stoichiometric faces, a negative γ, a slab that cannot be "
        "cut)",
    )
    equivalent_facets: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Per facet "h k l" reported: the requested facets '
        "equivalent to it by the bulk's symmetry (or by turning the slab over)",
    )
    terminations: dict[str, list[dict]] = Field(
        default_factory=dict,
        description='Per facet "h k l": every termination (pymatgen shift, '
        "spacing of the top two layers in Å, top and bottom layer formulas, "
        "n_atoms, surface_energy in J/m² or None, reason it was refused or "
        "None); the facet's γ is the lowest",
    )
    wulff_error: str | None = Field(
        None, description="Why no Wulff shape could be built, if none was"
    )
    convergence: dict[str, dict[str, float]] = quantity(
        'With surface_convergence: per facet "h k l", the lowest surface energy over '
        "its terminations at each layer count",
        "J/m²",
        default_factory=dict,
    )


@accepts_old_names
@dataclass
class SurfaceEnergyMaker(PropertyMaker):
    """Surface energies of the given facets (or all up to ``max_index``).

    Parameters
    ----------
    miller_indices : list of [h, k, l], optional
        Facets of the conventional standard cell; default every
        symmetrically distinct one up to ``max_index``.
    max_index : int
        With no ``miller_indices``: the largest Miller index.
    slab : SlabProtocol, preset name or mapping
        How each slab is built (the adsorption flow's protocol); default 6
        layers, all relaxed, 1x1 in-plane, 15 Å vacuum.  With fixed bottom
        layers only the top face relaxes (see :func:`surface_energy`).
    surface_convergence : list of int, optional
        Layer counts at which every facet's γ is also computed (the slab
        protocol otherwise unchanged), in the same batch: γ against the
        layer count, as ``slab_convergence`` gives adsorption energies.
        The Wulff shape uses ``slab.layers``.
    relax : RelaxSettings
        The slab and bulk relaxations (positions; the slab's cell is kept).
    plot_dir : str, optional
        Folder for the Wulff shape PNG.
    """

    name: str = "surface energy"
    miller_indices: list[list[int]] | None = None
    max_index: int = 1
    slab: SlabProtocol = field(
        default_factory=lambda: SlabProtocol(
            layers=6, fixed_layers=0, supercell=(1, 1), vacuum=15.0
        )
    )
    surface_convergence: list[int] | None = None
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.02, max_steps=300)
    )
    plot_dir: str | None = None

    property: ClassVar[str] = "surface_energy"
    document: ClassVar[type] = SurfaceEnergyDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True
    revision: ClassVar[int] = 1  # every symmetric termination, γ < 0 refused

    def __post_init__(self):
        super().__post_init__()
        if self.miller_indices is not None:
            self.miller_indices = check_miller(
                self.miller_indices, self.spec_key("miller_indices")
            )
        if not 1 <= self.max_index <= 3:
            raise ValueError(
                f"{self.spec_key('max_index')} must be 1, 2 or 3, got {self.max_index}"
            )
        for n in self.surface_convergence or []:
            fixed = self.slab.fixed_layers or 0
            if not isinstance(n, int) or n < 2 or n <= fixed:
                raise ValueError(
                    f"{self.spec_key('surface_convergence')}: layer counts must be "
                    f"integers >= 2 and above slab.fixed_layers ({fixed}), got "
                    f"{self.surface_convergence}"
                )

    def facets(self, structure) -> list[list[int]]:
        """The Miller indices computed for ``structure`` (of its conventional
        standard cell, as the slabs and the Wulff shape take them)."""
        if self.miller_indices is not None:
            return self.miller_indices
        found = get_symmetrically_distinct_miller_indices(
            conventional(structure), self.max_index
        )
        return [list(map(int, hkl)) for hkl in found]

    def compute(self, items, targets, ctx):
        """Every termination of every facet and every bulk cell in one
        batched relaxation."""
        from sevenomni_core.batch import predict, relax

        slabs, owners, plans, out = [], [], [], []
        for k, it in enumerate(items):
            try:
                plan = self._plan(it)
            except Exception as err:  # this material's slabs fail alone
                out.append(err)
                plans.append(None)
                continue
            out.append(None)
            plans.append(plan)
            slabs += plan["slabs"]
            owners += [k] * len(plan["slabs"])
        bulks = [AseAtomsAdaptor.get_atoms(it.structure) for it in items]
        fixed = [a for _, a in slabs if a.info["slab"]["fixed_layers"]]
        cells = [a for _, a in slabs] + bulks
        results = relax(
            cells,
            model=ctx.pot,
            task=ctx.task,
            fmax=self.relax.fmax,
            max_steps=self.relax.max_steps,
            optimizer=self.relax.optimizer,
        )
        # the unrelaxed energies of slabs with fixed layers (one face relaxes)
        unrelaxed = predict(fixed, model=ctx.pot, task=ctx.task) if fixed else []
        start = {id(a): p.energy for a, p in zip(fixed, unrelaxed, strict=True)}
        n_slabs = len(slabs)
        for k, (it, (target,)) in enumerate(zip(items, targets, strict=True)):
            if out[k] is not None:
                continue
            bulk = results[n_slabs + k]
            mine = [
                (key, atoms, results[i])
                for i, ((key, atoms), owner) in enumerate(
                    zip(slabs, owners, strict=True)
                )
                if owner == k
            ]
            try:
                out[k] = [self._document(it, target, ctx, bulk, mine, start, plans[k])]
            except Exception as err:  # one material's analysis fails alone
                out[k] = err
        return out

    def _plan(self, item) -> dict:
        """The slabs of one material to relax, and the facets refused.

        Requested facets equivalent by the bulk's symmetry are merged into
        one (:func:`canonical_miller`).  Every termination of a facet is
        built; those whose two faces differ or that are not stoichiometric
        are refused (their γ would not be that of one surface of this bulk),
        and a facet with no termination left fails with the reasons.
        """
        structure = item.structure
        formula = structure.composition.reduced_formula
        conv = conventional(structure)
        equivalents: dict[str, list[str]] = {}
        for hkl in self.facets(structure):
            key = " ".join(map(str, canonical_miller(conv, hkl)))
            equivalents.setdefault(key, []).append(" ".join(map(str, hkl)))
        extra = [n for n in self.surface_convergence or [] if n != self.slab.layers]
        slabs, failed, refused = [], {}, {}
        for key in equivalents:
            hkl = tuple(int(i) for i in key.split())
            try:
                built = self._slabs(structure, hkl)
            except ValueError as err:
                failed[key] = str(err)
                continue
            ok = [a for a in built if _refusal(a) is None]
            refused[key] = [a for a in built if _refusal(a) is not None]
            if not ok:
                failed[key] = (
                    f"{formula} ({key}): no termination gives a slab with two "
                    "equivalent faces and the bulk's stoichiometry: "
                    + "; ".join(_refusal(a) for a in built)
                )
                continue
            slabs += [(key, a) for a in ok]
            for n in sorted(set(extra)):  # a count with no valid slab is left out
                try:
                    more = self._slabs(structure, hkl, n)
                except ValueError:
                    continue
                slabs += [(key, a) for a in more if _refusal(a) is None]
        return {
            "slabs": slabs,
            "failed": failed,
            "refused": refused,
            "equivalents": equivalents,
        }

    def _slabs(self, structure, hkl, layers: int | None = None):
        """Every termination of facet ``hkl`` (with ``layers`` instead of
        the protocol's: convergence slabs, left out of the Wulff shape)."""
        protocol = self.slab
        if layers is not None:
            protocol = protocol.model_copy(update={"layers": layers})
        built = build_slabs(structure, hkl, protocol)
        for atoms in built:
            atoms.info["convergence"] = layers is not None
        return built

    def _document(self, item, target, ctx, bulk, mine, unrelaxed, plan):
        from pymatgen.analysis.wulff import WulffShape

        failed = [r.error for r in [bulk, *(r for _, _, r in mine)] if r.error]
        if failed:
            raise RuntimeError(f"a relaxation failed: {failed[0]}")
        formula = item.structure.composition.reduced_formula
        e_bulk = bulk.energy / len(bulk.atoms)
        rows, convergence = [], {}
        terminations: dict[str, list[dict]] = {}
        for key, atoms, r in mine:
            cell = atoms.cell.array
            area = float(np.linalg.norm(np.cross(cell[0], cell[1])))
            start = unrelaxed.get(id(atoms))
            gamma = surface_energy(r.energy, len(atoms), e_bulk, area, start)
            layers = atoms.info["slab"]["layers"]
            best = convergence.setdefault(key, {}).get(str(layers), np.inf)
            convergence[key][str(layers)] = min(best, gamma)
            if not atoms.info["convergence"]:
                terminations.setdefault(key, []).append(_termination(atoms, gamma))
            rows.append(
                {
                    "miller": [int(i) for i in key.split()],
                    "shift": atoms.info["slab"]["termination"]["shift"],
                    "layers": layers,
                    "fixed_layers": atoms.info["slab"]["fixed_layers"],
                    "n_atoms": len(atoms),
                    "area": area,
                    "energy": r.energy,
                    "unrelaxed_energy": start,
                    "surface_energy": gamma,
                    "converged": r.converged,
                }
            )
        stuck = [row["miller"] for row in rows if not row["converged"]]
        if stuck or not bulk.converged:
            raise RuntimeError(
                f"relaxations did not converge within {self.relax.max_steps} steps: "
                + ", ".join(map(str, stuck or ["bulk"]))
            )
        failed_facets = dict(plan["failed"])
        energies = {}
        for key in plan["equivalents"]:
            mine_ = terminations.setdefault(key, [])
            mine_ += [_termination(a, None) for a in plan["refused"].get(key, [])]
            mine_.sort(key=lambda t: (t["top"], t["bottom"], round(t["spacing"], 2)))
            computed = [t["surface_energy"] for t in mine_ if t["reason"] is None]
            if not computed:
                continue
            gamma = min(computed)
            if gamma < MIN_SURFACE_ENERGY:
                failed_facets[key] = (
                    f"{formula} ({key}): γ = {gamma:.3f} J/m² is negative: the "
                    "slab is more stable than the bulk, so this bulk is unstable "
                    "at this model (not its ground state, or not relaxed)"
                )
            else:
                energies[key] = gamma
        common = dict(
            input_structure=item.structure,
            bulk_energy_per_atom=e_bulk,
            slabs=rows,
            relaxed_slabs=[AseAtomsAdaptor.get_structure(r.atoms) for _, _, r in mine],
            failed_facets=failed_facets,
            equivalent_facets=plan["equivalents"],
            terminations=terminations,
            convergence=convergence if self.surface_convergence else {},
        )
        if not energies:
            return self.failed(
                target,
                ctx,
                f"no facet of {formula} gives a surface energy: "
                + "; ".join(failed_facets.values()),
                error_type="NoValidFacet",
                **common,
            )
        wulff, fractions, weighted, wulff_error = None, {}, None, None
        try:
            wulff = WulffShape(
                conventional(item.structure).lattice,
                [tuple(map(int, k.split())) for k in energies],
                list(energies.values()),
            )
            fractions = {
                " ".join(map(str, hkl)): float(f)
                for hkl, f in wulff.area_fraction_dict.items()
            }
            weighted = float(wulff.weighted_surface_energy)
        except Exception as err:  # e.g. an open prism of side facets alone
            wulff = None
            wulff_error = (
                f"the facets {', '.join(f'({k})' for k in energies)} do not "
                f"close a Wulff shape ({type(err).__name__}); add facets"
            )
        plots = [self._plot(wulff, target, ctx)] if self.plot_dir and wulff else []
        return self.doc(
            target,
            ctx,
            state="completed",
            surface_energies=energies,
            weighted_surface_energy=weighted,
            wulff_fractions=fractions,
            wulff_error=wulff_error,
            plots=plots,
            **common,
        )

    def _plot(self, wulff, target, ctx) -> str:
        plt, path = start_plot(
            self.plot_dir, f"{target.formula}_{target.key}_wulff.png"
        )
        fig = wulff_figure(
            wulff, f"{target.label}: Wulff shape, {model_title(ctx, target)}"
        )
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return str(path)


def wulff_figure(wulff: WulffShape, title: str):
    """The Wulff shape, one plainly visible color per facet, and a legend
    of each facet's γ (J/m²), lowest first.

    Parameters
    ----------
    wulff : WulffShape
        Built from surface energies in J/m².
    title : str
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        A pyplot figure: close it after use.
    """
    plt = pyplot()
    shown = sorted((e, k) for k, e in enumerate(wulff.e_surf_list) if wulff.on_wulff[k])
    colors = visible_colors(len(shown))
    custom = {
        tuple(wulff.miller_list[k]): color
        for (_, k), color in zip(shown, colors, strict=True)
    }
    ax = wulff.get_plot(custom_colors=custom, aspect_ratio=(6, 6))
    ax.legend(
        [plt.Rectangle((0, 0), 1, 1, fc=color) for color in colors],
        [f"{wulff.input_miller_fig[k]}: {e:.2f} J/m²" for e, k in shown],
        loc="upper center",
        bbox_to_anchor=(0.5, 1),
        ncol=min(3, len(shown)),
        title="surface energy γ",
    )
    ax.figure.suptitle(title)
    return ax.figure


def _refusal(atoms) -> str | None:
    """Why a termination gives no surface energy of the bulk, or None."""
    t = atoms.info["slab"]["termination"]
    if not t["stoichiometric"]:
        return (
            f"{t['formula']} is not stoichiometric, so its surface energy is "
            "not defined by the bulk's"
        )
    if not t["symmetric"]:
        polar = ", polar" if t["polar"] else ""
        return (
            f"its two faces are not equivalent (top {t['top']}, bottom "
            f"{t['bottom']}{polar}), so γ would average two different surfaces"
        )
    return None


def _termination(atoms, gamma: float | None) -> dict:
    """One row of ``terminations``."""
    t = atoms.info["slab"]["termination"]
    return {
        "shift": t["shift"],
        "spacing": t["spacing"],
        "top": t["top"],
        "bottom": t["bottom"],
        "n_atoms": len(atoms),
        "surface_energy": gamma,
        "reason": _refusal(atoms),
    }
