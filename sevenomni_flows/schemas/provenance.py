"""Where a result came from: model, checkpoint, task, precision, versions."""

from __future__ import annotations

import hashlib
import importlib.metadata
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

if TYPE_CHECKING:
    from sevenomni_core.model.potential import Potential

__all__ = ["FIX_SYMMETRY", "Provenance", "structure_id"]

#: The structure property holding the ``symprec`` (Å) of an input's ASE
#: ``FixSymmetry`` constraint, which pymatgen has no place for.
FIX_SYMMETRY = "fix_symmetry"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Provenance(BaseModel):
    """The model and software that produced a result."""

    name: str = Field(description="Model name (registry name, or checkpoint stem)")
    sha256: str = Field(description="SHA-256 of the checkpoint file")
    checkpoint: str = Field(description="Path of the checkpoint file")
    task: str | None = Field(None, description="Task (DFT protocol) head used")
    dtype: str = Field(description="Floating-point precision of the evaluation")
    device: str = Field(description="Device of the evaluation")
    backend: str = Field(
        "e3nn",
        description="Kernels of the forward pass: e3nn or cueq (cuEquivariance); "
        "results agree to rounding, so it is not part of the reuse key",
    )
    dispersion: dict | None = Field(
        None,
        description="DFT-D3 term added to the model (damping, functional, "
        "parameters, cutoffs in Å, three-body flag), None for none",
    )
    sevenomni_version: str = Field(description="Version of sevenomni")
    torch_version: str = Field(description="Version of torch")
    e3nn_version: str = Field(description="Version of e3nn")
    cuequivariance_version: str | None = Field(
        None, description="Version of cuequivariance-torch, with the cueq backend"
    )

    @classmethod
    def from_potential(cls, potential: Potential, task: str | None) -> Provenance:
        """Describe ``potential`` evaluated with ``task``."""
        info = potential.describe(task)
        return cls(
            name=info["model"],
            sha256=info["sha256"],
            checkpoint=info["checkpoint"],
            task=task,
            dtype=info["dtype"],
            device=info["device"],
            backend=info["backend"],
            dispersion=info.get("dispersion"),
            sevenomni_version=_version("sevenomni"),
            torch_version=_version("torch"),
            e3nn_version=_version("e3nn"),
            cuequivariance_version=(
                _version("cuequivariance-torch") if info["backend"] == "cueq" else None
            ),
        )


def structure_id(structure: Structure) -> str:
    """A stable hash of a structure: everything that changes its results.

    Species, lattice and fractional coordinates, rounded to 1e-6 (Å and
    fractional) so that a structure read back from a file gets the same id,
    and its constraints: the ``selective_dynamics`` of constrained sites
    (ASE's ``FixAtoms`` becomes that) and the ``symprec`` of a
    ``FixSymmetry`` (the :data:`FIX_SYMMETRY` property), so that a
    constrained cell is never served the free cell's results.  An
    unconstrained structure's id is what it was before constraints counted.
    """
    lattice = np.round(structure.lattice.matrix, 6) + 0.0
    frac = np.round(np.mod(structure.frac_coords, 1.0), 6) % 1.0 + 0.0
    species = [site.species_string for site in structure]
    identity: tuple = (species, lattice.tolist(), frac.tolist())
    moves = structure.site_properties.get("selective_dynamics")
    if moves is not None:
        fixed = [
            (i, [bool(m) for m in move])
            for i, move in enumerate(moves)
            if move is not None and not all(move)
        ]
        if fixed:
            identity = (*identity, ("fixed", fixed))
    symprec = (structure.properties or {}).get(FIX_SYMMETRY)
    if symprec is not None:
        identity = (*identity, (FIX_SYMMETRY, float(symprec)))
    return hashlib.sha256(repr(identity).encode()).hexdigest()[:16]
