"""Checks on input structures, run before any compute."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

__all__ = ["MIN_DISTANCE", "InvalidStructureError", "validate_atoms"]

#: Atoms closer than this (Å) are rejected as unphysical.
MIN_DISTANCE = 0.5


class InvalidStructureError(ValueError):
    """A structure the model cannot evaluate; the message names the culprit."""


def validate_atoms(
    atoms: Atoms,
    known_numbers: Iterable[int],
    model_name: str = "the model",
    label: str = "structure",
) -> None:
    """Raise :class:`InvalidStructureError` if ``atoms`` cannot be evaluated.

    Checks, in order: an empty structure, non-finite positions or cell, a
    periodic cell of zero volume, elements the model does not know, and
    pairs of atoms closer than :data:`MIN_DISTANCE`.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    known_numbers : iterable of int
        Atomic numbers the model was trained on.
    model_name : str
        Named in the error message.
    label : str
        How to call the structure in the message, e.g. its formula or file.

    Examples
    --------
    >>> from ase import Atoms
    >>> validate_atoms(Atoms("Xe", positions=[[0, 0, 0]]), [1, 8], "demo")
    Traceback (most recent call last):
    ...
    sevenomni_core.data.validate.InvalidStructureError: structure: element Xe (Z=54) is not covered by demo
    """  # noqa: E501
    if len(atoms) == 0:
        raise InvalidStructureError(f"{label}: the structure has no atoms")
    pos = atoms.get_positions()
    bad = np.where(~np.isfinite(pos).all(axis=1))[0]
    if bad.size:
        raise InvalidStructureError(
            f"{label}: non-finite position for atom {int(bad[0])} "
            f"({atoms[int(bad[0])].symbol}): {pos[bad[0]].tolist()}"
        )
    cell = atoms.cell.array
    if not np.isfinite(cell).all():
        raise InvalidStructureError(f"{label}: the cell has non-finite entries")
    pbc = atoms.pbc
    if pbc.any():
        periodic_rows = cell[pbc]
        rank = np.linalg.matrix_rank(periodic_rows, tol=1e-6)
        if rank < pbc.sum() or (pbc.all() and abs(atoms.cell.volume) < 1e-6):
            raise InvalidStructureError(
                f"{label}: periodic cell has zero volume "
                f"(periodic lattice vectors {periodic_rows.tolist()} are degenerate)"
            )
    known = set(int(z) for z in known_numbers)
    unknown = sorted(set(atoms.numbers.tolist()) - known)
    if unknown:
        names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in unknown)
        raise InvalidStructureError(
            f"{label}: element {names} is not covered by {model_name}"
        )
    _check_close_pairs(atoms, label)


def _check_close_pairs(atoms: Atoms, label: str) -> None:
    from .neighbors import neighbor_list

    i, j, shifts = neighbor_list(
        atoms.positions, atoms.cell.array, atoms.pbc, MIN_DISTANCE
    )
    if i.size == 0:
        return
    vec = atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array
    dist = np.linalg.norm(vec, axis=1)
    k = int(np.argmin(dist))
    a, b = int(i[k]), int(j[k])
    same = " (with its own periodic image)" if a == b else ""
    raise InvalidStructureError(
        f"{label}: atoms {a} ({atoms[a].symbol}) and {b} ({atoms[b].symbol}) are "
        f"{dist[k]:.3f} Å apart{same}, closer than {MIN_DISTANCE} Å"
    )
