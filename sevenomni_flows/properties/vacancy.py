"""Vacancy formation energy: one atom of each symmetry-inequivalent site
removed from a supercell, positions relaxed at fixed cell.

For each inequivalent site s of the (relaxed) input cell, in a supercell of
N atoms whose perpendicular widths are all at least ``min_length`` Å, with
E_bulk the energy of the perfect supercell:

    E_vac(s) = E_defect(s) − (N − 1)/N · E_bulk

E_defect(s) is the energy of the supercell with one atom of site s
removed, its positions relaxed in the perfect crystal's cell (constant
volume, the usual choice in a periodic cell).  The removed atom goes to a
reservoir at the crystal's mean energy per atom: for an element, its own
bulk (the textbook definition); for a compound that is an average over its
elements, not a physical reservoir, so a compound's values depend on that
convention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from pydantic import Field
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..jobs.calculation import PropertyMaker
from ..jobs.settings import RelaxSettings
from ..schemas import ResultDocument, quantity
from .md.maker import supercell_for
from .relax import inner_failure, relax_groups

__all__ = [
    "VacancyDocument",
    "VacancyMaker",
    "inequivalent_sites",
    "vacancy_formation_energy",
    "vacancy_supercells",
]


def vacancy_formation_energy(e_defect: float, e_bulk: float, n_bulk: int) -> float:
    """E_defect − (N − 1)/N · E_bulk, eV: the vacancy formation energy from
    the energies (eV) of the defect supercell and of the perfect one of
    ``n_bulk`` atoms."""
    return e_defect - (n_bulk - 1) / n_bulk * e_bulk


def inequivalent_sites(structure, symprec: float = 0.01) -> list[dict[str, Any]]:
    """One representative of each symmetry-inequivalent site of ``structure``:
    ``index`` (its lowest atom index), ``species``, ``multiplicity`` (atoms
    of the cell on that site) and ``wyckoff`` (letter, with multiplicity in
    the conventional cell), in order of index."""
    sym = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetrized_structure()
    sites = [
        {
            "index": min(indices),
            "species": structure[min(indices)].species_string,
            "multiplicity": len(indices),
            "wyckoff": wyckoff,
        }
        for indices, wyckoff in zip(
            sym.equivalent_indices, sym.wyckoff_symbols, strict=True
        )
    ]
    return sorted(sites, key=lambda s: s["index"])


def vacancy_supercells(
    structure, min_length: float, sites: list[dict]
) -> tuple[Atoms, list[Atoms]]:
    """The perfect supercell (``structure`` repeated until every width is at
    least ``min_length`` Å) and one copy per site with that site's
    representative removed (the repeat keeps the input cell's atoms first)."""
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.set_constraint()
    perfect = supercell_for(atoms, min_length)
    defects = []
    for site in sites:
        defect = perfect.copy()
        del defect[site["index"]]
        defects.append(defect)
    return perfect, defects


class VacancyDocument(ResultDocument):
    """Vacancy formation energies, one per symmetry-inequivalent site."""

    property: str = "vacancy"
    columns: ClassVar[tuple[str, ...]] = ("vacancy_formation_energy", "n_atoms")
    vacancy_formation_energy: float | None = quantity(
        "Lowest over the inequivalent sites, per vacancy", "eV"
    )
    formation_energies: list[float] = quantity(
        "Per inequivalent site (in the order of sites), per vacancy",
        "eV",
        default_factory=list,
    )
    sites: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each inequivalent site: index (its representative in the "
        "input cell), species, multiplicity (atoms of the input cell on it) and "
        "Wyckoff letter",
    )
    bulk_energy_per_atom: float | None = quantity(
        "Perfect supercell, positions relaxed", "eV/atom"
    )
    defect_energies: list[float] = quantity(
        "Each relaxed defect supercell (N − 1 atoms), per site",
        "eV",
        default_factory=list,
    )
    n_atoms: int | None = Field(None, description="Atoms of the perfect supercell")
    supercell_matrix: list[list[int]] | None = Field(
        None, description="Supercell, in the input cell's basis (diagonal)"
    )
    max_steps_reached: int = Field(
        0, description="Defect relaxations that did not converge"
    )


@dataclass
class VacancyMaker(PropertyMaker):
    """Vacancy formation energy of every inequivalent site of a crystal.

    The perfect and defect supercells of every material of the job are
    relaxed (positions only, at fixed cell) in one batch.  If any does not
    converge within ``relax.max_steps``, the property fails (see
    :func:`~sevenomni_flows.properties.relax.inner_failure`).

    Parameters
    ----------
    min_length : float
        Smallest perpendicular width of the supercell, Å (the input cell
        repeated along its own vectors).  10 Å gives 125 atoms for fcc Cu's
        primitive cell; a vacancy's energy converges slowly with size, so
        compare values at equal ``min_length``.
    symprec : float
        Symmetry tolerance finding the inequivalent sites, Å.
    relax : RelaxSettings
        The fixed-cell relaxations (fmax in eV/Å, max_steps).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from sevenomni_flows import VacancyMaker
    >>> maker = VacancyMaker(min_length=7.0)
    >>> [doc] = maker.run(bulk("Cu", cubic=True))  # doctest: +SKIP
    >>> round(doc.vacancy_formation_energy, 2)  # 7net-0, 32 atoms  # doctest: +SKIP
    0.97
    """

    name: str = "vacancy"
    min_length: float = 10.0
    symprec: float = 0.01
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.01, max_steps=300)
    )

    property: ClassVar[str] = "vacancy"
    document: ClassVar[type] = VacancyDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        for key in ("min_length", "symprec"):
            if not getattr(self, key) > 0:
                raise ValueError(
                    f"{self.spec_key(key)} must be > 0 Å, got {getattr(self, key)}"
                )

    def compute(self, items, targets, ctx):
        """Build every material's supercells, relax them all in one batch,
        then each material's formation energies."""
        sites, groups = [], []
        for it in items:
            try:
                here = inequivalent_sites(it.structure, self.symprec)
                perfect, defects = vacancy_supercells(
                    it.structure, self.min_length, here
                )
            except Exception as err:  # one material's symmetry fails alone
                here, perfect, defects = err, None, []
            sites.append(here)
            groups.append([perfect, *defects] if perfect is not None else [])
        relaxed = relax_groups(groups, ctx, self.relax, [it.task for it in items])
        out = []
        for it, (target,), here, cells, results in zip(
            items, targets, sites, groups, relaxed, strict=True
        ):
            if isinstance(here, Exception):
                out.append(here)
                continue
            out.append([self._energies(it, target, ctx, here, cells, results)])
        return out

    def _energies(self, item, target, ctx, sites, cells, results):
        perfect = cells[0]
        reps = np.rint(
            np.linalg.solve(item.structure.lattice.matrix.T, perfect.cell.array.T).T
        )
        common = {
            "sites": sites,
            "n_atoms": len(perfect),
            "supercell_matrix": reps.astype(int).tolist(),
        }
        why = inner_failure(results, self.relax, "vacancy supercells")
        if why:
            stuck = sum(1 for r in results if r.error is None and not r.converged)
            return self.failed(
                target,
                ctx,
                why,
                error_type="InnerRelaxationError",
                max_steps_reached=stuck,
                **common,
            )
        e_bulk = float(results[0].energy)
        defect = [float(r.energy) for r in results[1:]]
        energies = [vacancy_formation_energy(e, e_bulk, len(perfect)) for e in defect]
        return self.doc(
            target,
            ctx,
            state="completed",
            input_structure=item.structure,
            vacancy_formation_energy=min(energies),
            formation_energies=energies,
            bulk_energy_per_atom=e_bulk / len(perfect),
            defect_energies=defect,
            **common,
        )

    @classmethod
    def invariance(cls):
        """Its entry of the same-crystal-same-answer harness
        (:mod:`sevenomni_flows.testing`): a rotated or permuted cell gives
        the same supercell, so the same energies."""
        from ase.build import bulk

        from ..jobs.base import ModelSettings
        from ..testing.invariance import Entry
        from ..testing.invariance import Field as Compared

        settings = ModelSettings(model="7net-0", device="cpu")
        relaxed = "relaxations stop anywhere below fmax"
        return Entry(
            "vacancy",
            fields={
                "vacancy_formation_energy": Compared("intensive", 5e-3, relaxed),
                "bulk_energy_per_atom": Compared("intensive", 1e-4, relaxed),
                "n_atoms": Compared("same", 0, "the same widths"),
            },
            skip={
                "formation_energies": "in the order of the cell's atoms",
                "defect_energies": "in the order of the cell's atoms",
                "sites": "indices of the cell's atoms",
                "supercell_matrix": "in the basis of each cell",
                "max_steps_reached": "the optimiser's path depends on the cell",
            },
            representations=("rotated", "permuted"),
            maker=lambda: cls(settings=settings, min_length=7.0),
            material=lambda: AseAtomsAdaptor.get_structure(
                bulk("Cu", "fcc", a=3.63, cubic=True)
            ),
        )
