"""Vacancy formation energy: one atom of each symmetry-inequivalent site
removed from a supercell, positions relaxed at fixed cell.

For each inequivalent site s of the (relaxed) crystal, in a supercell of
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

The supercell is the standardized primitive cell (:func:`canonical_primitive`)
repeated along its own vectors, as the phonon supercell is
(:func:`~sevenomni_flows.properties.phonon.phonon_cell`), so every way of
writing the crystal (primitive, conventional, a supercell, rotated,
translated, permuted) gives the same supercell and the same vacancy; the
removed atom of each site is the first of that site in the canonical order.
Repeating the input cell instead gave fcc Cu 125 atoms from its primitive
cell and 108 from its cubic cell at 10 Å: two answers for one crystal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import spglib
from ase import Atoms
from phonopy.structure.cells import get_primitive_matrix_by_centring
from pydantic import Field
from pymatgen.io.ase import AseAtomsAdaptor

from ..jobs.calculation import PropertyMaker
from ..jobs.settings import RelaxSettings
from ..schemas import ResultDocument, quantity
from .md.maker import supercell_for
from .relax import inner_failure, relax_groups

__all__ = [
    "VacancyDocument",
    "VacancyMaker",
    "canonical_primitive",
    "inequivalent_sites",
    "vacancy_formation_energy",
    "vacancy_supercells",
]


def vacancy_formation_energy(e_defect: float, e_bulk: float, n_bulk: int) -> float:
    """E_defect − (N − 1)/N · E_bulk, eV: the vacancy formation energy from
    the energies (eV) of the defect supercell and of the perfect one of
    ``n_bulk`` atoms."""
    return e_defect - (n_bulk - 1) / n_bulk * e_bulk


def inequivalent_sites(primitive: Atoms, symprec: float = 0.01) -> list[dict]:
    """One representative of each symmetry-inequivalent site of a cell
    (:func:`canonical_primitive`'s, so that the choice does not depend on
    how the crystal was written): ``index`` (its first atom in the cell),
    ``species``, ``multiplicity`` (atoms of the cell on that site) and
    ``wyckoff`` (spglib's letter, with the site's multiplicity in the
    conventional cell, as in the International Tables), in order of index.

    Where the space group allows several origins (rocksalt, perovskite), the
    letters of sites of different species may be swapped between inputs
    (Na 4a and Cl 4b, or Na 4b and Cl 4a): a convention of the setting, not
    a different crystal."""
    cell = (primitive.cell.array, primitive.get_scaled_positions(), primitive.numbers)
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if dataset is None:  # no symmetry: every atom is its own site
        orbits, letters, points = np.arange(len(primitive)), ["a"] * len(primitive), 1
    else:
        orbits, letters = np.asarray(dataset.equivalent_atoms), dataset.wyckoffs
        letter = spglib.get_spacegroup_type(dataset.hall_number).international[0]
        centring = get_primitive_matrix_by_centring(letter)
        points = round(1 / abs(np.linalg.det(centring)))  # lattice points
    sites = []
    for first in sorted(set(orbits.tolist())):
        n = int(np.count_nonzero(orbits == first))
        sites.append(
            {
                "index": int(first),
                "species": primitive[first].symbol,
                "multiplicity": n,
                "wyckoff": f"{n * points}{letters[first]}",
            }
        )
    return sites


def canonical_primitive(structure, symprec: float = 0.01) -> Atoms:
    """The standardized primitive cell of ``structure``, written the same
    way however the crystal is given (primitive, conventional, a supercell,
    rotated, translated, its atoms in any order).

    The cell is spglib's standardized primitive cell (the standard
    conventional cell reduced by its centring), kept in the input's
    Cartesian frame with the input's metric (not idealized); its atoms are
    sorted by atomic number, then by their fractional coordinates in the
    standard setting (spglib's origin), so that the same atom comes first
    whatever the input's order, origin or cell.

    Parameters
    ----------
    structure : pymatgen Structure
        The crystal, in any cell.
    symprec : float
        Symmetry tolerance, Å.
    """
    cell = (
        structure.lattice.matrix,
        structure.frac_coords,
        [site.specie.Z for site in structure],
    )
    found = spglib.standardize_cell(
        cell, to_primitive=True, no_idealize=True, symprec=symprec
    )
    if found is None:  # no symmetry found: the input cell is its own
        lattice, positions, numbers = cell
    else:
        lattice, positions, numbers = found
    dataset = spglib.get_symmetry_dataset(
        (lattice, positions, numbers), symprec=symprec
    )
    standard = np.asarray(positions, dtype=float)
    if dataset is not None:  # fractional coordinates at the standard origin
        letter = spglib.get_spacegroup_type(dataset.hall_number).international[0]
        to_primitive = np.linalg.inv(get_primitive_matrix_by_centring(letter))
        conventional = standard @ np.asarray(dataset.transformation_matrix).T
        standard = (conventional + dataset.origin_shift) @ to_primitive.T
    key = np.round(standard % 1.0, 3) % 1.0
    order = np.lexsort([*key.T[::-1], numbers])
    return Atoms(
        numbers=np.asarray(numbers)[order],
        cell=lattice,
        scaled_positions=np.asarray(positions)[order],
        pbc=True,
    )


def vacancy_supercells(
    primitive: Atoms, min_length: float, sites: list[dict]
) -> tuple[Atoms, list[Atoms]]:
    """The perfect supercell (``primitive`` repeated along its own vectors
    until every perpendicular width is at least ``min_length`` Å) and one
    copy per site with that site's representative (``index`` in
    ``primitive``) removed (the repeat keeps the primitive cell's atoms
    first)."""
    perfect = supercell_for(primitive, min_length)
    defects = []
    for site in sites:
        defect = perfect.copy()
        del defect[site["index"]]
        defects.append(defect)
    return perfect, defects


def _name(item) -> str:
    """The material in a message: its formula and label."""
    formula = item.structure.composition.reduced_formula
    return f"{formula} (label {item.label})" if item.label else formula


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
        description="Each inequivalent site, by atomic number: index (the atom "
        "removed, in the standardized primitive cell), species, multiplicity "
        "(atoms of the primitive cell on it) and Wyckoff symbol (multiplicity "
        "in the conventional cell and letter)",
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
        None,
        description="Supercell, in the standardized primitive cell's basis "
        "(diagonal), whatever cell the input was written in",
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
        Smallest perpendicular width of the supercell, Å (the standardized
        primitive cell repeated along its own vectors, whatever cell the
        input is written in).  10 Å gives 125 atoms for fcc Cu; a vacancy's
        energy converges slowly with size, so compare values at equal
        ``min_length``.
    symprec : float
        Symmetry tolerance finding the primitive cell and the inequivalent
        sites, Å.
    relax : RelaxSettings
        The fixed-cell relaxations (fmax in eV/Å, max_steps).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from sevenomni_flows import VacancyMaker
    >>> maker = VacancyMaker(min_length=6.0)
    >>> [doc] = maker.run(bulk("Cu", cubic=True))  # doctest: +SKIP
    >>> doc.n_atoms  # 3x3x3 primitive cells, from the cubic cell too  # doctest: +SKIP
    27
    """

    name: str = "vacancy"
    min_length: float = 10.0
    symprec: float = 0.01
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.01, max_steps=300)
    )

    property: ClassVar[str] = "vacancy"
    document: ClassVar[type] = VacancyDocument
    revision: ClassVar[int] = 1  # the supercell of the primitive cell
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
                primitive = canonical_primitive(it.structure, self.symprec)
                here = inequivalent_sites(primitive, self.symprec)
                perfect, defects = vacancy_supercells(primitive, self.min_length, here)
            except Exception as err:  # one material's symmetry fails alone
                err = type(err)(f"{_name(it)}: no vacancy supercells: {err}")
                here, primitive, perfect, defects = err, None, None, []
            sites.append((here, primitive))
            groups.append([perfect, *defects] if perfect is not None else [])
        relaxed = relax_groups(groups, ctx, self.relax, [it.task for it in items])
        out = []
        for it, (target,), (here, primitive), cells, results in zip(
            items, targets, sites, groups, relaxed, strict=True
        ):
            if isinstance(here, Exception):
                out.append(here)
                continue
            out.append(
                [self._energies(it, target, ctx, here, primitive, cells, results)]
            )
        return out

    def _energies(self, item, target, ctx, sites, primitive, cells, results):
        perfect = cells[0]
        reps = np.rint(np.linalg.solve(primitive.cell.array.T, perfect.cell.array.T).T)
        common = {
            "sites": sites,
            "n_atoms": len(perfect),
            "supercell_matrix": reps.astype(int).tolist(),
        }
        why = inner_failure(results, self.relax, f"vacancy supercells of {_name(item)}")
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
        (:mod:`sevenomni_flows.testing`): rocksalt MgO (two sites) as its
        primitive cell, conventional cell, two supercells, rotated and
        translated, and permuted: every cell gives the same supercell (16
        atoms at 4.5 Å, in float64), so the same energies, site by site."""
        from ase.build import bulk

        from ..jobs.base import ModelSettings
        from ..testing.invariance import Entry
        from ..testing.invariance import Field as Compared

        settings = ModelSettings(model="7net-0", device="cpu", dtype="float64")
        same = "the same supercell, relaxed from the same start"
        return Entry(
            "vacancy",
            fields={
                "vacancy_formation_energy": Compared("intensive", 1e-4, f"eV: {same}"),
                "formation_energies": Compared("intensive", 1e-4, f"eV: {same}"),
                "defect_energies": Compared("intensive", 1e-4, f"eV: {same}"),
                "bulk_energy_per_atom": Compared("intensive", 1e-6, f"eV: {same}"),
                "n_atoms": Compared("same", 0, "the same supercell"),
                "supercell_matrix": Compared("same", 0, "of the primitive cell"),
                "sites": Compared("same", 0, "the same canonical order"),
            },
            skip={
                "max_steps_reached": "the optimiser's path depends on the frame",
            },
            representations=(
                "conventional",
                "supercell 2x1x1",
                "supercell non-diagonal",
                "rotated",
                "permuted",
            ),
            maker=lambda: cls(settings=settings, min_length=4.5, relax={"fmax": 0.05}),
            material=lambda: AseAtomsAdaptor.get_structure(
                bulk("MgO", "rocksalt", a=4.21)
            ),
            slow=False,
        )
