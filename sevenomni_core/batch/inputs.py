"""Turning user inputs (ASE or pymatgen structures, tasks) into graphs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ase import Atoms

from ..data import atoms_to_graph, validate_atoms
from ..model.potential import Potential

__all__ = ["as_atoms", "per_structure", "prepare"]


def as_atoms(structure: Any) -> Atoms:
    """An :class:`ase.Atoms` copy of an ASE or pymatgen structure/molecule."""
    if isinstance(structure, Atoms):
        return structure.copy()
    module = type(structure).__module__
    if module.startswith("pymatgen"):
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_atoms(structure)
    raise TypeError(
        "expected ase.Atoms or a pymatgen Structure/Molecule, "
        f"got {type(structure).__name__}"
    )


def per_structure(value: Any, n: int, name: str) -> list:
    """Broadcast a scalar option to ``n`` structures, or check a list's length."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries for {n} structures")
        return list(value)
    return [value] * n


def prepare(
    potential: Potential, structure: Any, task: str | None, label: str
) -> tuple[Atoms, dict]:
    """Validate one structure and build its graph (errors name ``label``)."""
    atoms = as_atoms(structure)
    validate_atoms(atoms, potential.network.species, potential.name, label)
    _, task_index = potential.resolve_task(task)
    graph = atoms_to_graph(
        atoms, potential.cutoff, potential.network.z_to_index, task_index
    )
    return atoms, graph


def labels(structures: Sequence[Any]) -> list[str]:
    """Labels for error messages: ``atoms.info["label"]`` (e.g. the file and
    frame it came from) when set, else ``structure i (formula)``."""
    out = []
    for i, s in enumerate(structures):
        info = getattr(s, "info", None)
        if isinstance(info, dict) and info.get("label"):
            out.append(str(info["label"]))
            continue
        try:
            formula = as_atoms(s).get_chemical_formula() or "empty"
        except TypeError:
            formula = type(s).__name__
        out.append(f"structure {i} ({formula})")
    return out
