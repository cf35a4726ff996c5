"""Phonons with phonopy: finite displacements, forces in one batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jobflow import Maker, job
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms

from sevenomni_core.batch import predict

from ..schemas import PhononDocument
from .base import ModelSettings, failed_input, identity, resolve_input

__all__ = ["PhononMaker", "phonopy_forces", "supercell_matrix"]


def supercell_matrix(structure, min_length: float) -> list[list[int]]:
    """A diagonal supercell whose lattice vectors are each at least ``min_length`` Å."""
    reps = [
        max(1, int(np.ceil(min_length / length))) for length in structure.lattice.abc
    ]
    return np.diag(reps).tolist()


def phonopy_forces(phonon: Phonopy, pot, task) -> list[str | None]:
    """Set the forces of all displaced supercells, computed in one batch."""
    cells = phonon.supercells_with_displacements
    from ase import Atoms

    atoms = [
        Atoms(c.symbols, cell=c.cell, scaled_positions=c.scaled_positions, pbc=True)
        for c in cells
    ]
    preds = predict(atoms, model=pot, task=task)
    errors = [p.error for p in preds if not p.ok]
    if not errors:
        forces = np.array([p.forces for p in preds])
        forces -= forces.mean(axis=1, keepdims=True)  # drift from finite precision
        phonon.forces = forces
    return errors


@dataclass
class PhononMaker(Maker):
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
    settings: ModelSettings = field(default_factory=ModelSettings)
    min_length: float = 10.0
    supercell: list[list[int]] | None = None
    displacement: float = 0.01
    mesh: float = 60.0
    imaginary_tol: float = -0.05
    plot_dir: str | None = None

    @job(output_schema=PhononDocument, data=["band_structure", "force_constants"])
    def make(self, structure):
        """Return a PhononDocument (frequencies in THz, free energy in kJ/mol)."""
        pot, task = self.settings.potential()
        structure, info = resolve_input(structure)
        if structure is None:
            return failed_input("phonon", self, pot, task, info, PhononDocument)
        base = identity(structure, info, "phonon", self, pot, task)
        matrix = self.supercell or supercell_matrix(structure, self.min_length)
        unit = PhonopyAtoms(
            symbols=[str(s.specie) for s in structure],
            cell=structure.lattice.matrix,
            scaled_positions=structure.frac_coords,
        )
        phonon = Phonopy(unit, supercell_matrix=matrix, primitive_matrix="auto")
        phonon.generate_displacements(distance=self.displacement)
        errors = phonopy_forces(phonon, pot, task)
        if errors:
            return PhononDocument(**base, state="failed", error=errors[0])
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
        plots = []
        if self.plot_dir:
            plots.append(self._plot(phonon, base["structure_id"], base["formula"]))
        min_freq = float(min(freqs.min(), mesh_freqs.min()))
        return PhononDocument(
            **base,
            state="completed",
            supercell_matrix=[list(map(int, r)) for r in matrix],
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

    def _plot(self, phonon: Phonopy, sid: str, formula: str) -> str:
        import matplotlib

        matplotlib.use("Agg")
        folder = Path(self.plot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{formula}_{sid}_phonon.png"
        plt = phonon.plot_band_structure_and_dos()
        plt.suptitle(f"{formula}: phonons ({self.settings.model})")
        plt.savefig(path, dpi=120)
        plt.close("all")
        return str(path)
