"""Elastic tensor from strained cells (pymatgen's strain and fitting tools)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase.stress import voigt_6_to_full_3x3_stress
from ase.units import GPa
from jobflow import Maker, job
from pymatgen.analysis.elasticity import ElasticTensor, Strain
from pymatgen.io.ase import AseAtomsAdaptor

from sevenomni_core.batch import relax

from ..schemas import ElasticDocument
from .base import ModelSettings, failed_input, identity, resolve_input

__all__ = ["ElasticMaker", "elastic_strains"]


def elastic_strains(magnitudes) -> list[Strain]:
    """Each of the six Voigt strain states times each non-zero magnitude."""
    strains = []
    for state in np.eye(6):
        for m in magnitudes:
            if abs(m) > 1e-10:
                strains.append(Strain.from_voigt(m * state))
    return strains


@dataclass
class ElasticMaker(Maker):
    """The 6x6 elastic tensor of a relaxed structure.

    All strained cells are relaxed (positions only) in one batch; the tensor
    is fitted with pymatgen's ``ElasticTensor.from_independent_strains``
    after subtracting the stress of the unstrained cell.

    Parameters
    ----------
    strain_magnitudes : list of float
        Strains applied along each Voigt component (atomate2's default).
    fmax : float
        Force threshold of the fixed-cell relaxations, eV/Å.
    """

    name: str = "elastic"
    settings: ModelSettings = field(default_factory=ModelSettings)
    strain_magnitudes: list[float] = field(
        default_factory=lambda: [-0.01, -0.005, 0.005, 0.01]
    )
    fmax: float = 0.005
    max_steps: int = 300

    @job(output_schema=ElasticDocument)
    def make(self, structure):
        """Return an ElasticDocument (``failed`` if the input is missing or bad)."""
        pot, task = self.settings.potential()
        structure, info = resolve_input(structure)
        if structure is None:
            return failed_input("elastic", self, pot, task, info, ElasticDocument)
        base = identity(structure, info, "elastic", self, pot, task)
        strains = elastic_strains(self.strain_magnitudes)
        cells = [structure] + [
            s.get_deformation_matrix().apply_to_structure(structure) for s in strains
        ]
        results = relax(
            [AseAtomsAdaptor.get_atoms(c) for c in cells],
            model=pot,
            task=task,
            fmax=self.fmax,
            max_steps=self.max_steps,
        )
        bad = [r.error for r in results if r.error]
        if bad:
            return ElasticDocument(**base, state="failed", error=bad[0])
        stresses = [voigt_6_to_full_3x3_stress(r.stress) / GPa for r in results]
        tensor = ElasticTensor.from_independent_strains(
            strains, stresses[1:], eq_stress=stresses[0]
        )
        voigt = tensor.voigt
        return ElasticDocument(
            **base,
            state="completed",
            elastic_tensor=np.round(voigt, 6).tolist(),
            bulk_modulus_vrh=float(tensor.k_vrh),
            shear_modulus_vrh=float(tensor.g_vrh),
            strain_magnitudes=list(self.strain_magnitudes),
        )
