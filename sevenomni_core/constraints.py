"""The ASE constraints the batched engines honour, checked without torch.

Inputs are checked when a run is planned (a structure with a constraint the
engines cannot honour fails alone, before any model is loaded); the engines
check again in :mod:`sevenomni_core.batch.guards`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms
from ase.constraints import FixSymmetry

__all__ = ["SUPPORTED_CONSTRAINTS", "symmetry_precision", "unsupported_constraint"]

#: The ASE constraints the batched engines honour: ``FixAtoms`` everywhere,
#: ``FixSymmetry`` in relaxations (see :mod:`sevenomni_core.batch.symmetry`).
SUPPORTED_CONSTRAINTS = ("FixAtoms", "FixSymmetry")


def unsupported_constraint(
    atoms: Atoms, supported: Sequence[str] = SUPPORTED_CONSTRAINTS
) -> str | None:
    """Why a constraint of ``atoms`` cannot be honoured, or None.

    The one check of constraints on inputs, e.g. ``"constraint
    FixBondLengths is not supported (supported: FixAtoms, FixSymmetry)"``;
    callers prefix the structure's label.
    """
    for c in atoms.constraints:
        name = type(c).__name__
        if name not in supported:
            return (
                f"constraint {name} is not supported "
                f"(supported: {', '.join(supported)})"
            )
    return None


def symmetry_precision(atoms: Atoms) -> float | None:
    """The ``symprec`` (Å) of the ``FixSymmetry`` constraint of ``atoms``, or None."""
    for c in atoms.constraints:
        if isinstance(c, FixSymmetry):
            return float(c.symprec)
    return None
