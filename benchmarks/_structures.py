"""Reproducible small bulk structures for the batch benchmarks."""

from __future__ import annotations

import numpy as np
from ase.build import bulk

PROTOTYPES = [
    ("Cu", "fcc", 3.61),
    ("Al", "fcc", 4.05),
    ("Ni", "fcc", 3.52),
    ("Ag", "fcc", 4.09),
    ("Fe", "bcc", 2.87),
    ("W", "bcc", 3.16),
    ("Mo", "bcc", 3.15),
    ("Na", "bcc", 4.23),
    ("Si", "diamond", 5.43),
    ("Ge", "diamond", 5.66),
    ("C", "diamond", 3.57),
    ("NaCl", "rocksalt", 5.64),
    ("MgO", "rocksalt", 4.21),
    ("LiF", "rocksalt", 4.03),
    ("GaAs", "zincblende", 5.65),
    ("ZnS", "zincblende", 5.41),
    ("Mg", "hcp", 3.21),
    ("Ti", "hcp", 2.95),
    ("Zn", "hcp", 2.66),
]


def small_bulk(n: int, seed: int = 0, max_atoms: int = 16):
    """``n`` rattled, strained bulk cells of 1-16 atoms."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        name, kind, a = PROTOTYPES[rng.integers(len(PROTOTYPES))]
        kwargs = {"a": a}
        if kind == "hcp":
            kwargs["c"] = a * 1.63
        atoms = bulk(
            name, kind, cubic=bool(rng.integers(2)) and kind != "hcp", **kwargs
        )
        reps = [1, 1, 1]
        while len(atoms) * np.prod(reps) * 2 <= max_atoms and rng.random() < 0.5:
            reps[rng.integers(3)] += 1
        atoms = atoms.repeat(reps)
        if len(atoms) < 2:
            atoms = atoms.repeat((2, 1, 1))
        strain = np.eye(3) + rng.normal(0, 0.02, (3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.rattle(0.03, seed=int(rng.integers(1 << 30)))
        out.append(atoms)
    return out
