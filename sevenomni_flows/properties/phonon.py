"""Phonons with phonopy: finite displacements, forces in one batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

import numpy as np
import spglib
from phonopy import Phonopy
from phonopy.physical_units import get_physical_units
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.cells import get_primitive, get_primitive_matrix_by_centring
from pydantic import Field

from ..jobs.calculation import PropertyMaker, model_title
from ..jobs.plots import start_plot
from ..jobs.settings import (
    ImaginaryTol,
    Mesh,
    PhononSettings,
    Positive,
    Supercell,
    validated,
)
from ..schemas import ResultDocument, bulky, failure_type, quantity
from .relax import per_cell

__all__ = [
    "CUTOFF_FREQUENCY",
    "KJ_MOL_PER_EV",
    "SYMPREC",
    "PhononCell",
    "PhononMaker",
    "displaced_atoms",
    "drift_free",
    "per_atom",
    "phonon_cell",
    "phonopy_unit",
    "set_forces",
    "to_ase",
]


#: kJ/mol in one eV (phonopy's free energies are in kJ/mol).
KJ_MOL_PER_EV: Final[float] = get_physical_units().EvTokJmol

#: THz: modes below this carry no free energy, entropy or heat capacity.
#: The three acoustic modes at Γ are zero but for force noise (±1e-7 THz in
#: float64, up to ~5e-3 in float32); phonopy's default (zero) keeps those
#: that come out positive, and each adds kT ln(hν/kT), about -18 kT in float64,
#: a random offset of F(V) of ~1e-4 eV/atom that moves the QHA's α by
#: several % (Si).  The lowest mesh frequency away from Γ is ~0.3-1 THz at
#: the default mesh.
CUTOFF_FREQUENCY: Final[float] = 0.05

#: Å: the symmetry tolerance of the primitive cell search (phonopy's default).
SYMPREC: Final[float] = 1e-5


@dataclass(frozen=True)
class PhononCell:
    """The primitive cell phonopy is built on and its force-constant
    supercell, for one crystal (:func:`phonon_cell`).

    Attributes
    ----------
    primitive_matrix : 3x3 list of float
        The primitive cell's lattice vectors (columns) in the basis of the
        input cell: phonopy's ``primitive_matrix="auto"``.
    supercell_matrix : 3x3 list of int
        The force-constant supercell in the primitive cell's basis.
    """

    primitive_matrix: list[list[float]]
    supercell_matrix: list[list[int]]

    def unit(self, structure) -> PhonopyAtoms:
        """The primitive cell of ``structure``: the input cell, or a strained
        copy of it with the same atoms (thermal properties are per this
        cell)."""
        primitive = get_primitive(
            phonopy_unit(structure), self.primitive_matrix, symprec=SYMPREC
        )
        return PhonopyAtoms(
            symbols=primitive.symbols,
            cell=primitive.cell,
            scaled_positions=primitive.scaled_positions,
        )

    def phonopy(self, structure, displacement: float) -> Phonopy:
        """A phonopy object of the primitive cell of ``structure`` in this
        supercell, its displacements (Å) generated."""
        return self.unit_phonopy(self.unit(structure), displacement)

    def unit_phonopy(self, unit: PhonopyAtoms, displacement: float) -> Phonopy:
        """A phonopy object of the primitive cell ``unit`` (from
        :meth:`unit`) in this supercell, its displacements (Å) generated."""
        phonon = Phonopy(unit, supercell_matrix=self.supercell_matrix)
        phonon.generate_displacements(distance=displacement)
        return phonon


def phonon_cell(structure, min_length: float, supercell=None) -> PhononCell:
    """The primitive cell of ``structure`` and its force-constant supercell.

    The same crystal gives the same physical supercell however its cell is
    written (primitive, conventional, a supercell, rotated): without
    ``supercell``, it is the diagonal supercell of the *standardized
    primitive* cell (spglib's standard conventional cell reduced by its
    centring, phonopy's ``primitive_matrix="auto"``) whose lattice vectors
    are each at least ``min_length`` Å.  For a primitive input this is the
    supercell phonopy users build by hand, and it is about half the atoms
    of the conventional cell's (fcc at 10 Å: 64 atoms, not 108).  A given
    ``supercell`` refers to the input cell (``structure``'s lattice).

    Parameters
    ----------
    structure : pymatgen Structure
        The input cell.
    min_length : float
        Å, used when ``supercell`` is None.
    supercell : 3x3 integers, optional
        A supercell of the input cell.
    """
    dataset = spglib.get_symmetry_dataset(
        phonopy_unit(structure).totuple(), symprec=SYMPREC
    )
    if dataset is None:  # no symmetry found: the input cell is its own
        to_conventional, centring = np.eye(3), np.eye(3)
    else:
        to_conventional = np.linalg.inv(dataset.transformation_matrix)
        letter = spglib.get_spacegroup_type(dataset.hall_number).international[0]
        centring = get_primitive_matrix_by_centring(letter)
    primitive = to_conventional @ centring
    if supercell is None:
        cell = primitive.T @ np.asarray(structure.lattice.matrix)  # rows
        lengths = np.linalg.norm(cell, axis=1)
        matrix = np.diag([max(1, int(np.ceil(min_length / n))) for n in lengths])
    else:  # integers: the input's lattice vectors are the primitive's sums
        matrix = np.linalg.inv(primitive) @ np.asarray(supercell, dtype=float)
    return PhononCell(
        primitive_matrix=primitive.round(12).tolist(),
        supercell_matrix=np.round(matrix).astype(int).tolist(),
    )


def per_atom(phonon: Phonopy) -> dict[str, np.ndarray]:
    """phonopy's thermal properties per mole of atoms: ``free_energy``
    (kJ/mol), ``entropy`` and ``heat_capacity`` (J/K/mol); phonopy gives
    them per mole of its primitive cells."""
    n = len(phonon.primitive)
    thermal = phonon.get_thermal_properties_dict()
    return {
        name: np.asarray(thermal[name]) / n
        for name in ("free_energy", "entropy", "heat_capacity")
    }


def phonopy_unit(structure) -> PhonopyAtoms:
    """A pymatgen structure as a phonopy unit cell."""
    return PhonopyAtoms(
        symbols=[str(site.specie) for site in structure],
        cell=structure.lattice.matrix,
        scaled_positions=structure.frac_coords,
    )


def to_ase(cell):
    """A phonopy cell (``PhonopyAtoms``) as periodic ASE atoms."""
    from ase import Atoms

    return Atoms(
        cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True
    )


def displaced_atoms(phonon: Phonopy) -> list:
    """The displaced supercells of a phonopy object as ASE atoms."""
    return [to_ase(c) for c in phonon.supercells_with_displacements]


def drift_free(preds) -> np.ndarray:
    """The forces of the predictions less their mean (the drift of finite
    precision), in float64; a RuntimeError names the first that failed."""
    errors = [p.error for p in preds if not p.ok]
    if errors:
        raise RuntimeError(f"a displaced supercell failed: {errors[0]}")
    forces = np.array([p.forces for p in preds], dtype=float)
    return forces - forces.mean(axis=1, keepdims=True)


def set_forces(phonon: Phonopy, preds) -> list[str]:
    """Set the forces of the displaced supercells; the errors if any failed."""
    errors = [p.error for p in preds if not p.ok]
    if not errors:
        phonon.forces = drift_free(preds)
    return errors


class PhononDocument(ResultDocument):
    """Harmonic phonons from finite displacements (phonopy)."""

    property: str = "phonon"
    columns: ClassVar[tuple[str, ...]] = (
        "has_imaginary_modes",
        "max_frequency",
        "free_energy_300k",
    )
    supercell_matrix: list[list[int]] | None = Field(
        None, description="Force-constant supercell, in the primitive cell's basis"
    )
    primitive_matrix: list[list[float]] | None = Field(
        None, description="Primitive cell (columns) in the input cell's basis"
    )
    displacement: float | None = quantity("Displacement", "Å")
    has_imaginary_modes: bool | None = Field(
        None, description="Any frequency below the tolerance (-0.05 THz)"
    )
    min_frequency: float | None = quantity("Lowest frequency", "THz")
    max_frequency: float | None = quantity("Highest frequency", "THz")
    gamma_frequencies: list[float] | None = quantity("Frequencies at Gamma", "THz")
    free_energy_300k: float | None = quantity(
        "Harmonic vibrational free energy at 300 K per atom", "eV/atom"
    )
    entropy_300k: float | None = quantity(
        "Vibrational entropy at 300 K per mole of atoms", "J/K/mol"
    )
    heat_capacity_300k: float | None = quantity(
        "Heat capacity C_v at 300 K per mole of atoms", "J/K/mol"
    )
    band_structure: dict | None = bulky(
        "Band path: q-points, distances, frequencies (THz)"
    )
    force_constants: list | None = bulky("Force constants, eV/Å²")


@dataclass
class PhononMaker(PropertyMaker):
    """Harmonic phonons: band structure (seekpath path), DOS and free energy,
    entropy and heat capacity at 300 K per atom.

    Parameters
    ----------
    min_length : float
        Å: without ``supercell``, the force constants come from the diagonal
        supercell of the standardized primitive cell whose lattice vectors
        are each at least this long, whatever cell the input is written in
        (:func:`phonon_cell`).
    supercell : 3x3 list, optional
        Supercell matrix of the input cell.
    displacement : float
        Finite displacement, Å.
    mesh : float or [n1, n2, n3]
        Sampling mesh for DOS and thermodynamics (phonopy length, or the
        mesh itself).
    imaginary_tol : float
        THz: a mode below this is imaginary.
    plot_dir : str, optional
        Folder for the band-structure + DOS PNG.
    """

    name: str = "phonon"
    # the fields of PhononSettings, flat: this Maker *is* the phonon job
    min_length: Positive = 10.0
    supercell: Supercell | None = None
    displacement: Positive = 0.01
    mesh: Mesh = 60.0
    imaginary_tol: ImaginaryTol = -0.05
    plot_dir: str | None = None

    property: ClassVar[str] = "phonon"
    document: ClassVar[type] = PhononDocument
    stage: ClassVar[str] = "material"
    # 1: per atom; one supercell for every cell
    revision: ClassVar[int] = 1
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        self.supercell = self.phonon_settings().supercell

    def phonon_settings(self) -> PhononSettings:
        """Its settings as :class:`PhononSettings` (checked: an error names
        the spec key)."""
        names = PhononSettings.model_fields
        return validated(self, PhononSettings, {k: getattr(self, k) for k in names})

    def compute(self, items, targets, ctx):
        """Displace every item; all supercells' forces in one batch; then each."""
        from sevenomni_core.batch import predict

        setups = []
        for it in items:
            try:  # phonopy may refuse one structure
                cell = phonon_cell(it.structure, self.min_length, self.supercell)
                setups.append((cell, cell.phonopy(it.structure, self.displacement)))
            except Exception as err:
                setups.append(err)
        cells = [displaced_atoms(s[1]) if isinstance(s, tuple) else [] for s in setups]
        flat = [a for group in cells for a in group]
        tasks = per_cell(cells, [it.task for it in items])
        preds = predict(flat, model=ctx.pot, task=tasks) if flat else []
        out, start = [], 0
        for it, (target,), setup, group in zip(
            items, targets, setups, cells, strict=True
        ):
            mine = preds[start : start + len(group)]
            start += len(group)
            if isinstance(setup, Exception):
                out.append(setup)
                continue
            try:
                out.append([self._finish(it, target, ctx, *setup, mine)])
            except Exception as err:  # one material's analysis fails alone
                out.append(err)
        return out

    def _finish(
        self, item, target, ctx, cell: PhononCell, phonon: Phonopy, preds
    ) -> PhononDocument:
        errors = set_forces(phonon, preds)
        if errors:
            why = f"a displaced supercell failed: {errors[0]}"
            return self.failed(target, ctx, why, error_type=failure_type(errors[0]))
        phonon.produce_force_constants()
        phonon.auto_band_structure(npoints=51, write_yaml=False)
        bands = phonon.get_band_structure_dict()
        freqs = np.concatenate([np.asarray(f) for f in bands["frequencies"]])
        phonon.run_mesh(self.mesh)
        phonon.run_total_dos()
        phonon.run_thermal_properties(
            temperatures=[300.0], cutoff_frequency=CUTOFF_FREQUENCY
        )
        thermal = per_atom(phonon)
        mesh_freqs = phonon.get_mesh_dict()["frequencies"]
        gamma = phonon.get_frequencies([0.0, 0.0, 0.0])
        plots = [self._plot(phonon, target, ctx)] if self.plot_dir else []
        min_freq = float(min(freqs.min(), mesh_freqs.min()))
        return self.doc(
            target,
            ctx,
            state="completed",
            input_structure=item.structure,
            supercell_matrix=np.asarray(phonon.supercell_matrix).astype(int).tolist(),
            primitive_matrix=cell.primitive_matrix,
            displacement=self.displacement,
            has_imaginary_modes=min_freq < self.imaginary_tol,
            min_frequency=min_freq,
            max_frequency=float(max(freqs.max(), mesh_freqs.max())),
            gamma_frequencies=[float(f) for f in gamma],
            free_energy_300k=float(thermal["free_energy"][0]) / KJ_MOL_PER_EV,
            entropy_300k=float(thermal["entropy"][0]),
            heat_capacity_300k=float(thermal["heat_capacity"][0]),
            plots=plots,
            band_structure={
                "qpoints": [np.asarray(q).tolist() for q in bands["qpoints"]],
                "distances": [np.asarray(d).tolist() for d in bands["distances"]],
                "frequencies": [np.asarray(f).tolist() for f in bands["frequencies"]],
            },
            force_constants=np.asarray(phonon.force_constants).tolist(),
        )

    def _plot(self, phonon: Phonopy, target, ctx) -> str:
        plt, path = start_plot(
            self.plot_dir, f"{target.formula}_{target.key}_phonon.png"
        )
        phonon.plot_band_structure_and_dos()
        fig = plt.gcf()
        # phonopy's band segments, then its DOS (its grid's empty colorbar
        # axes follow)
        *bands, dos = [ax for ax in fig.axes if ax.has_data()]
        bands[0].set_ylabel("frequency (THz)")
        bands[0].set_xlabel("wave vector")
        dos.set_xlabel("DOS (states/THz)")
        plt.suptitle(f"{target.label}: phonons, {model_title(ctx, target)}")
        plt.savefig(path, dpi=120)
        plt.close("all")
        return str(path)
