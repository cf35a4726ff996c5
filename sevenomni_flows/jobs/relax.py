"""Relaxation and single-point jobs, batched over structures."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase.units import GPa
from jobflow import Maker, job
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.batch import predict, relax

from ..schemas import RelaxDocument, StaticDocument
from .base import ModelSettings, identity, resolve_input

__all__ = ["RelaxMaker", "StaticMaker"]


@dataclass
class RelaxMaker(Maker):
    """Relax one structure, or a list of them in one batched job.

    Parameters
    ----------
    name : str
        Job name.
    settings : ModelSettings
        Model, task, device and dtype.
    fmax : float
        Force convergence threshold, eV/Å.
    max_steps : int
        Most FIRE steps.
    relax_cell : bool
        Also relax the cell (FrechetCellFilter-equivalent).
    max_volume_change : float
        A cell relaxation whose volume changes by more than this factor fails.
    """

    name: str = "relax"
    settings: ModelSettings = field(default_factory=ModelSettings)
    fmax: float = 0.05
    max_steps: int = 500
    relax_cell: bool = True
    max_volume_change: float = 2.0

    @job
    def make(self, structure):
        """Return a RelaxDocument (a list of them for a list of structures).

        A relaxation that does not converge is flagged (``converged=False``);
        an invalid structure or a blow-up gives ``state="failed"`` with why.
        """
        many = isinstance(structure, list)
        docs = self.documents(structure if many else [structure])
        return docs if many else docs[0]

    def documents(self, structures) -> list[RelaxDocument]:
        """Relax structures in one batch and describe each (failures included)."""
        pot, task = self.settings.potential()
        inputs = [resolve_input(s) for s in structures]
        results = relax(
            [AseAtomsAdaptor.get_atoms(s) for s, _ in inputs],
            model=pot,
            task=task,
            fmax=self.fmax,
            max_steps=self.max_steps,
            relax_cell=self.relax_cell,
            max_volume_change=self.max_volume_change,
        )
        docs = []
        for (s, info), r in zip(inputs, results, strict=True):
            base = identity(s, info, "relax", self, pot, task)
            if r.error is not None:
                docs.append(
                    RelaxDocument(
                        **base,
                        state="failed",
                        error=r.error,
                        fmax=self.fmax,
                        relax_cell=self.relax_cell,
                    )
                )
                continue
            final = AseAtomsAdaptor.get_structure(r.atoms)
            docs.append(
                RelaxDocument(
                    **base,
                    state="completed",
                    fmax=self.fmax,
                    relax_cell=self.relax_cell,
                    structure=final,
                    energy=r.energy,
                    energy_per_atom=r.energy / len(final),
                    volume_per_atom=final.volume / len(final),
                    converged=r.converged,
                    steps=r.steps,
                    max_force=float(np.linalg.norm(r.forces, axis=1).max()),
                )
            )
        return docs


@dataclass
class StaticMaker(Maker):
    """Energy, forces and stress of one structure or a batch."""

    name: str = "static"
    settings: ModelSettings = field(default_factory=ModelSettings)

    @job
    def make(self, structure):
        """Return a StaticDocument (a list of them for a list of structures)."""
        many = isinstance(structure, list)
        docs = self.documents(structure if many else [structure])
        return docs if many else docs[0]

    def documents(self, structures) -> list[StaticDocument]:
        """Energy, forces and stress of structures in one batch."""
        pot, task = self.settings.potential()
        inputs = [resolve_input(s) for s in structures]
        preds = predict(
            [AseAtomsAdaptor.get_atoms(s) for s, _ in inputs], model=pot, task=task
        )
        docs = []
        for (s, info), p in zip(inputs, preds, strict=True):
            base = identity(s, info, "static", self, pot, task)
            if not p.ok:
                docs.append(StaticDocument(**base, state="failed", error=p.error))
                continue
            docs.append(
                StaticDocument(
                    **base,
                    state="completed",
                    energy=p.energy,
                    energy_per_atom=p.energy / len(s),
                    forces=p.forces.tolist(),
                    stress=None if p.stress is None else (p.stress / GPa).tolist(),
                )
            )
        return docs
