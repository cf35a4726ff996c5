"""Small labelled datasets for training tests, made with the shipped models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from sevenomni_core import SevenOmniCalculator


def labelled_bulk(
    path: Path,
    model: str = "7net-mf-0",
    task: str | None = "PBE",
    n: int = 12,
    elements: tuple[str, ...] = ("Cu", "Al"),
    seed: int = 0,
) -> Path:
    """``n`` strained, rattled fcc cells (1 or 4 atoms) labelled by ``model``."""
    rng = np.random.default_rng(seed)
    calc = SevenOmniCalculator(model, task=task)
    frames = []
    for k in range(n):
        atoms = bulk(elements[k % len(elements)], cubic=bool(k % 2))
        atoms.set_cell(atoms.cell * rng.uniform(0.97, 1.03), scale_atoms=True)
        atoms.rattle(0.05, seed=seed * 100 + k)
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        stress = atoms.get_stress()
        atoms.calc = SinglePointCalculator(
            atoms, energy=energy, forces=forces, stress=stress
        )
        frames.append(atoms)
    write(path, frames)
    return path


def unlabelled_molecule(path: Path) -> Path:
    """A water molecule without any labels."""
    write(path, molecule("H2O"))
    return path
