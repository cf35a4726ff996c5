"""Phonons with phonopy: finite displacements, forces in one batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms

from sevenomni_core.batch import predict

from ..schemas import PhononDocument
from .calculation import PropertyMaker, model_title
from .plots import start_plot
from .relax import per_cell

__all__ = [
    "PhononMaker",
    "check_supercell",
    "displaced_atoms",
    "drift_free",
    "phonopy_unit",
    "set_forces",
    "supercell_matrix",
    "to_ase",
]


def supercell_matrix(structure, min_length: float) -> list[list[int]]:
    """A diagonal supercell whose lattice vectors are each at least ``min_length`` Å."""
    reps = [
        max(1, int(np.ceil(min_length / length))) for length in structure.lattice.abc
    ]
    return np.diag(reps).tolist()


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


def check_supercell(matrix, key: str = "phonon.supercell") -> list[list[int]]:
    """A 3x3 integer supercell matrix with a positive determinant, or an error
    naming the spec ``key``."""
    try:
        arr = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (3, 3):
        raise ValueError(f"{key} must be a 3x3 matrix, got {matrix}")
    if not np.allclose(arr, np.round(arr)):
        raise ValueError(f"{key} must hold integers, got {matrix}")
    if round(np.linalg.det(arr)) < 1:
        raise ValueError(f"{key} must have a positive determinant, got {matrix}")
    return np.round(arr).astype(int).tolist()


@dataclass
class PhononMaker(PropertyMaker):
    """Harmonic phonons: band structure (seekpath path), DOS and free energy.

    Parameters
    ----------
    min_length : float
        Smallest supercell lattice vector, Å (ignored with ``supercell``).
    supercell : 3x3 list, optional
        Supercell matrix.
    displacement : float
        Finite displacement, Å.
    mesh : float
        Sampling mesh density for DOS and thermodynamics (phonopy length).
    plot_dir : str, optional
        Folder for the band-structure + DOS PNG.
    """

    name: str = "phonon"
    min_length: float = 10.0
    supercell: list[list[int]] | None = None
    displacement: float = 0.01
    mesh: float = 60.0
    imaginary_tol: float = -0.05
    plot_dir: str | None = None

    property: ClassVar[str] = "phonon"
    document: ClassVar[type] = PhononDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        if self.supercell is not None:
            self.supercell = check_supercell(self.supercell)
        if self.min_length <= 0 or self.displacement <= 0 or self.mesh <= 0:
            raise ValueError(
                "phonon.min_length, phonon.displacement and phonon.mesh must be > 0"
            )

    def compute(self, items, targets, ctx):
        """Displace every item; all supercells' forces in one batch; then each."""
        phonons = []
        for it in items:
            try:
                phonons.append(self.phonopy(it.structure))
            except Exception as err:  # phonopy may refuse one structure
                phonons.append(err)
        cells = [displaced_atoms(p) if isinstance(p, Phonopy) else [] for p in phonons]
        flat = [a for group in cells for a in group]
        tasks = per_cell(cells, [it.task for it in items])
        preds = predict(flat, model=ctx.pot, task=tasks) if flat else []
        out, start = [], 0
        for it, (target,), phonon, group in zip(
            items, targets, phonons, cells, strict=True
        ):
            mine = preds[start : start + len(group)]
            start += len(group)
            if isinstance(phonon, Exception):
                out.append(phonon)
                continue
            try:
                out.append([self._finish(it, target, ctx, phonon, mine)])
            except Exception as err:  # one material's analysis fails alone
                out.append(err)
        return out

    def phonopy(self, structure) -> Phonopy:
        """A phonopy object of ``structure`` with this Maker's supercell and
        displacements generated."""
        matrix = self.supercell or supercell_matrix(structure, self.min_length)
        phonon = Phonopy(
            phonopy_unit(structure), supercell_matrix=matrix, primitive_matrix="auto"
        )
        phonon.generate_displacements(distance=self.displacement)
        return phonon

    def _finish(self, item, target, ctx, phonon: Phonopy, preds) -> PhononDocument:
        errors = set_forces(phonon, preds)
        if errors:
            return self.failed(
                target,
                ctx,
                errors[0],
                error_type="InvalidStructureError",
            )
        phonon.produce_force_constants()
        phonon.auto_band_structure(npoints=51, write_yaml=False)
        bands = phonon.get_band_structure_dict()
        freqs = np.concatenate([np.asarray(f) for f in bands["frequencies"]])
        phonon.run_mesh(self.mesh)
        phonon.run_total_dos()
        phonon.run_thermal_properties(t_min=300, t_max=300, t_step=1)
        thermal = phonon.get_thermal_properties_dict()
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
            displacement=self.displacement,
            has_imaginary_modes=min_freq < self.imaginary_tol,
            min_frequency=min_freq,
            max_frequency=float(max(freqs.max(), mesh_freqs.max())),
            gamma_frequencies=[float(f) for f in gamma],
            free_energy_300k=float(thermal["free_energy"][0]),
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
        fig.axes[0].set_ylabel("frequency (THz)")
        fig.axes[-1].set_xlabel("DOS (states/THz)")
        plt.suptitle(f"{target.label}: phonons, {model_title(ctx, target)}")
        plt.savefig(path, dpi=120)
        plt.close("all")
        return str(path)
