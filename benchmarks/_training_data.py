"""Two-domain training data, generated offline with 7net-mf-0's two tasks.

Domain ``pbe`` is labelled by 7net-mf-0's PBE task, domain ``r2scan`` by its
R2SCAN task.  Structures come in two families of fcc metals: bulk cells
(strained and rattled) and (111)/(100) slabs (rattled).  Labels are written
as extxyz with a single-point calculator, the format ``sevenomni train``
reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc100, fcc111
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from sevenomni_core.batch import predict

METALS = {"Cu": 3.63, "Ag": 4.15, "Au": 4.17, "Pd": 3.95, "Pt": 3.97, "Ni": 3.52}
TASKS = {"pbe": "PBE", "r2scan": "R2SCAN"}


def bulk_cells(n: int, seed: int) -> list[Atoms]:
    """``n`` fcc cells of 1, 4 or 8 atoms, strained by up to 4% and rattled."""
    rng = np.random.default_rng(seed)
    names = list(METALS)
    out = []
    for k in range(n):
        el = names[k % len(names)]
        atoms = bulk(el, "fcc", a=METALS[el], cubic=k % 3 != 0)
        if k % 3 == 2:
            atoms = atoms.repeat((2, 1, 1))
        strain = np.eye(3) + rng.uniform(-0.04, 0.04, (3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
        out.append(atoms)
    return out


def slabs(n: int, seed: int) -> list[Atoms]:
    """``n`` 2x2x3 fcc(111) or (100) slabs with 6 Å of vacuum, rattled."""
    rng = np.random.default_rng(seed)
    names = list(METALS)
    out = []
    for k in range(n):
        el = names[k % len(names)]
        build = fcc111 if k % 2 == 0 else fcc100
        atoms = build(el, (2, 2, 3), a=METALS[el], vacuum=6.0, periodic=True)
        atoms.rattle(0.1, seed=int(rng.integers(1 << 30)))
        out.append(atoms)
    return out


def label(
    structures: list[Atoms], domain: str, model: str = "7net-mf-0"
) -> list[Atoms]:
    """Attach energies, forces and stresses of ``model``'s task for ``domain``."""
    preds = predict(structures, model=model, task=TASKS[domain], device="cpu")
    out = []
    for atoms, p in zip(structures, preds, strict=True):
        if not p.ok:
            raise RuntimeError(p.error)
        atoms = atoms.copy()
        atoms.calc = SinglePointCalculator(
            atoms, energy=p.energy, forces=p.forces, stress=p.stress
        )
        out.append(atoms)
    return out


def write_domain(path: Path, structures: list[Atoms], domain: str) -> Path:
    """Label ``structures`` for ``domain`` and write them to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, label(structures, domain))
    return path


if __name__ == "__main__":
    # the small files behind workflows/training/*.yaml
    here = Path(__file__).resolve().parents[1] / "workflows" / "training" / "data"
    write_domain(here / "pbe_bulk.extxyz", bulk_cells(48, 1), "pbe")
    write_domain(here / "pbe_slabs.extxyz", slabs(36, 2), "pbe")
    write_domain(here / "r2scan_bulk.extxyz", bulk_cells(36, 3), "r2scan")
    write_domain(here / "r2scan_slabs_dbs.extxyz", slabs(2, 4), "r2scan")
