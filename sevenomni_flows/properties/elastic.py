"""Elastic tensor from strained cells (pymatgen's strain and fitting tools)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from ase.stress import voigt_6_to_full_3x3_stress
from ase.units import GPa
from pydantic import Field
from pymatgen.io.ase import AseAtomsAdaptor

from ..jobs.calculation import PropertyMaker
from ..jobs.settings import RelaxSettings, accepts_old_names
from ..schemas import ResultDocument, quantity
from .relax import inner_failure, labelled_atoms, relax_groups

if TYPE_CHECKING:
    from pymatgen.analysis.elasticity import Strain

__all__ = ["ElasticMaker", "elastic_strains"]


def elastic_strains(magnitudes) -> list[Strain]:
    """Each of the six Voigt strain states times each non-zero magnitude."""
    from pymatgen.analysis.elasticity import Strain

    strains = []
    for state in np.eye(6):
        for m in magnitudes:
            if abs(m) > 1e-10:
                strains.append(Strain.from_voigt(m * state))
    return strains


class ElasticDocument(ResultDocument):
    """The elastic tensor and its Voigt-Reuss-Hill moduli."""

    property: str = "elastic"
    columns: ClassVar[tuple[str, ...]] = (
        "elastic_tensor",
        "bulk_modulus_vrh",
        "shear_modulus_vrh",
    )
    elastic_tensor: list[list[float]] | None = quantity(
        "Elastic tensor, 6x6 Voigt (xx yy zz yz xz xy)", "GPa"
    )
    bulk_modulus_vrh: float | None = quantity("Bulk modulus K_VRH", "GPa")
    shear_modulus_vrh: float | None = quantity("Shear modulus G_VRH", "GPa")
    strain_magnitudes: list[float] = quantity(
        "Applied strains", "unitless", default_factory=list
    )
    strains: list[list[float]] | None = quantity(
        "Voigt strain of each deformed cell", "unitless"
    )
    stresses: list[list[float]] | None = quantity(
        "Stress of each deformed cell, Voigt (xx yy zz yz xz xy), tensile positive; "
        "the fit can be redone from these",
        "GPa",
    )
    max_steps_reached: int = Field(
        0, description="Deformed cells whose relaxation did not converge"
    )


@accepts_old_names
@dataclass
class ElasticMaker(PropertyMaker):
    """The 6x6 elastic tensor of a relaxed structure (or of a batch of them).

    All strained cells of all materials of the job are relaxed (positions
    only) in one batch; the tensor is fitted with pymatgen's
    ``ElasticTensor.from_independent_strains`` after subtracting the stress of
    the unstrained cell.  If any strained cell does not converge within
    ``relax.max_steps``, the property fails (see
    :func:`~sevenomni_flows.properties.relax.inner_failure`).

    Parameters
    ----------
    strain_magnitudes : list of float
        Strains applied along each Voigt component (atomate2's default);
        at least one must be non-zero.
    relax : RelaxSettings
        The fixed-cell relaxations of the strained cells (fmax in eV/Å).
    """

    name: str = "elastic"
    strain_magnitudes: list[float] = field(
        default_factory=lambda: [-0.01, -0.005, 0.005, 0.01]
    )
    relax: RelaxSettings = field(
        default_factory=lambda: RelaxSettings(fmax=0.005, max_steps=300)
    )

    property: ClassVar[str] = "elastic"
    document: ClassVar[type] = ElasticDocument
    stage: ClassVar[str] = "material"
    bulk_only: ClassVar[bool] = True
    mixes_tasks: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        mags, key = list(self.strain_magnitudes), self.spec_key("strain_magnitudes")
        if not mags or all(abs(m) <= 1e-10 for m in mags):
            raise ValueError(f"{key} needs a non-zero strain, got {mags}")
        if any(abs(m) > 0.1 for m in mags):
            raise ValueError(f"{key} must be small (|strain| <= 0.1), got {mags}")
        if len({round(m, 10) for m in mags}) != len(mags):
            raise ValueError(f"{key} has duplicates: {mags}")

    def compute(self, items, targets, ctx):
        """Strain every item, relax all cells in one batch, fit each tensor."""
        strains = elastic_strains(self.strain_magnitudes)
        groups = [
            [labelled_atoms(it)]
            + [
                AseAtomsAdaptor.get_atoms(
                    s.get_deformation_matrix().apply_to_structure(it.structure)
                )
                for s in strains
            ]
            for it in items
        ]
        out = []
        tasks = [it.task for it in items]
        relaxed = relax_groups(groups, ctx, self.relax, tasks)
        for it, (target,), results in zip(items, targets, relaxed, strict=True):
            try:
                out.append([self._fit(it, target, ctx, strains, results)])
            except Exception as err:  # a fit of one material fails alone
                out.append(err)
        return out

    def _fit(self, item, target, ctx, strains, results) -> ElasticDocument:
        from pymatgen.analysis.elasticity import ElasticTensor

        why = inner_failure(results, self.relax, "strained cells")
        n_stuck = sum(1 for r in results if r.error is None and not r.converged)
        if why:
            return self.failed(
                target,
                ctx,
                why,
                error_type="InnerRelaxationError",
                max_steps_reached=n_stuck,
            )
        stresses = [voigt_6_to_full_3x3_stress(r.stress) / GPa for r in results]
        tensor = ElasticTensor.from_independent_strains(
            strains, stresses[1:], eq_stress=stresses[0]
        )
        return self.doc(
            target,
            ctx,
            state="completed",
            input_structure=item.structure,
            elastic_tensor=np.round(tensor.voigt, 6).tolist(),
            bulk_modulus_vrh=float(tensor.k_vrh),
            shear_modulus_vrh=float(tensor.g_vrh),
            strain_magnitudes=list(self.strain_magnitudes),
            strains=[np.asarray(s.voigt).tolist() for s in strains],
            stresses=[(r.stress / GPa).tolist() for r in results[1:]],
        )
