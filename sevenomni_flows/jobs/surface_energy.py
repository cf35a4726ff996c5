"""Surface energies γ(hkl) and the Wulff shape of each material.

The slabs of every facet of every material, and the bulk cells they are
cut from, are relaxed in one batch.  Slabs are built by the adsorption
flow's slab protocol (layers, fixed layers, vacuum, lateral size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase.units import J, m
from pydantic import Field
from pymatgen.analysis.wulff import WulffShape
from pymatgen.core import Composition
from pymatgen.core.surface import get_symmetrically_distinct_miller_indices
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from sevenomni_core.batch import predict, relax

from ..adsorption.slab_protocol import SlabProtocol
from ..adsorption.surfaces import build_slab
from ..schemas import ResultDocument, quantity
from .adsorption import check_miller
from .calculation import PropertyMaker, model_title
from .plots import start_plot

__all__ = ["SurfaceEnergyDocument", "SurfaceEnergyMaker", "surface_energy"]


def conventional(structure):
    """The conventional standard cell Miller indices refer to."""
    return SpacegroupAnalyzer(structure).get_conventional_standard_structure()


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
        'Surface energy per facet "h k l"', "J/m²", default_factory=dict
    )
    weighted_surface_energy: float | None = quantity(
        "Area-weighted surface energy of the Wulff shape", "J/m²"
    )
    wulff_fractions: dict[str, float] = Field(
        default_factory=dict,
        description='Area fraction of each facet "h k l" on the Wulff shape',
    )
    bulk_energy_per_atom: float | None = quantity(
        "Relaxed bulk energy per atom", "eV/atom"
    )
    slabs: list[dict] = Field(
        default_factory=list,
        description="Per slab: miller, layers, fixed_layers, n_atoms, area (Å²), "
        "energy (eV, relaxed), unrelaxed_energy (eV, with fixed layers), "
        "converged",
    )
    convergence: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='With surface_convergence: per facet "h k l", the surface '
        "energy (J/m²) at each layer count",
    )


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
    fmax, max_steps
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
    fmax: float = 0.02
    max_steps: int = 300
    plot_dir: str | None = None

    property: ClassVar[str] = "surface_energy"
    document: ClassVar[type] = SurfaceEnergyDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True

    def __post_init__(self):
        if self.miller_indices is not None:
            self.miller_indices = check_miller(
                self.miller_indices, "surface_energy.miller_indices"
            )
        if not 1 <= self.max_index <= 3:
            raise ValueError(
                f"surface_energy.max_index must be 1, 2 or 3, got {self.max_index}"
            )
        self.slab = SlabProtocol.checked(self.slab, "surface_energy.slab")
        for n in self.surface_convergence or []:
            fixed = self.slab.fixed_layers or 0
            if not isinstance(n, int) or n < 2 or n <= fixed:
                raise ValueError(
                    "surface_energy.surface_convergence: layer counts must be "
                    f"integers >= 2 and above slab.fixed_layers ({fixed}), got "
                    f"{self.surface_convergence}"
                )
        if self.fmax <= 0 or self.max_steps < 1:
            raise ValueError(
                "surface_energy.fmax must be > 0 and surface_energy.max_steps >= 1"
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
        """Every facet's slab and every bulk cell in one batched relaxation."""
        slabs, owners, out = [], [], []
        for k, it in enumerate(items):
            try:
                extra = [
                    n for n in self.surface_convergence or [] if n != self.slab.layers
                ]
                mine = [
                    (hkl, self._slab(it.structure, hkl, n))
                    for hkl in self.facets(it.structure)
                    for n in [None, *sorted(set(extra))]
                ]
            except Exception as err:  # this material's slabs fail alone
                out.append(err)
                continue
            out.append(None)
            slabs += mine
            owners += [k] * len(mine)
        bulks = [AseAtomsAdaptor.get_atoms(it.structure) for it in items]
        fixed = [a for _, a in slabs if a.info["slab"]["fixed_layers"]]
        cells = [a for _, a in slabs] + bulks
        results = relax(
            cells,
            model=ctx.pot,
            task=ctx.task,
            fmax=self.fmax,
            max_steps=self.max_steps,
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
                (hkl, atoms, results[i])
                for i, ((hkl, atoms), owner) in enumerate(
                    zip(slabs, owners, strict=True)
                )
                if owner == k
            ]
            try:
                out[k] = [self._document(it, target, ctx, bulk, mine, start)]
            except Exception as err:  # one material's analysis fails alone
                out[k] = err
        return out

    def _slab(self, structure, hkl, layers: int | None = None):
        """The slab of facet ``hkl`` (with ``layers`` instead of the
        protocol's: a convergence slab, left out of the Wulff shape)."""
        protocol = self.slab
        if layers is not None:
            protocol = protocol.model_copy(update={"layers": layers})
        atoms = build_slab(structure, tuple(hkl), protocol)
        atoms.info["convergence"] = layers is not None
        slab = Composition(atoms.get_chemical_formula()).reduced_composition
        if slab != structure.composition.reduced_composition:
            raise ValueError(
                f"the ({' '.join(map(str, hkl))}) slab is not stoichiometric, so "
                "its surface energy is not defined by the bulk's"
            )
        return atoms

    def _document(self, item, target, ctx, bulk, mine, unrelaxed):
        failed = [r.error for r in [bulk, *(r for _, _, r in mine)] if r.error]
        if failed:
            raise RuntimeError(f"a relaxation failed: {failed[0]}")
        e_bulk = bulk.energy / len(bulk.atoms)
        energies, rows, convergence = {}, [], {}
        for hkl, atoms, r in mine:
            cell = atoms.cell.array
            area = float(np.linalg.norm(np.cross(cell[0], cell[1])))
            start = unrelaxed.get(id(atoms))
            key = " ".join(map(str, hkl))
            gamma = surface_energy(r.energy, len(atoms), e_bulk, area, start)
            layers = atoms.info["slab"]["layers"]
            convergence.setdefault(key, {})[str(layers)] = gamma
            if not atoms.info["convergence"]:
                energies[key] = gamma
            rows.append(
                {
                    "miller": hkl,
                    "layers": atoms.info["slab"]["layers"],
                    "fixed_layers": atoms.info["slab"]["fixed_layers"],
                    "n_atoms": len(atoms),
                    "area": area,
                    "energy": r.energy,
                    "unrelaxed_energy": start,
                    "converged": r.converged,
                }
            )
        stuck = [row["miller"] for row in rows if not row["converged"]]
        if stuck or not bulk.converged:
            raise RuntimeError(
                f"relaxations did not converge within {self.max_steps} steps: "
                + ", ".join(map(str, stuck or ["bulk"]))
            )
        wulff = WulffShape(
            conventional(item.structure).lattice,
            [tuple(map(int, k.split())) for k in energies],
            list(energies.values()),
        )
        fractions = {
            " ".join(map(str, hkl)): float(f)
            for hkl, f in wulff.area_fraction_dict.items()
        }
        plots = [self._plot(wulff, target, ctx)] if self.plot_dir else []
        return self.doc(
            target,
            ctx,
            state="completed",
            input_structure=item.structure,
            surface_energies=energies,
            weighted_surface_energy=float(wulff.weighted_surface_energy),
            wulff_fractions=fractions,
            bulk_energy_per_atom=e_bulk,
            slabs=rows,
            convergence=convergence if self.surface_convergence else {},
            plots=plots,
        )

    def _plot(self, wulff, target, ctx) -> str:
        plt, path = start_plot(
            self.plot_dir, f"{target.formula}_{target.key}_wulff.png"
        )
        wulff.get_plot()
        plt.gcf().suptitle(f"{target.label}: Wulff shape, {model_title(ctx, target)}")
        plt.savefig(path, dpi=120)
        plt.close("all")
        return str(path)
