"""Checks that a batched engine gives each structure what it gets alone.

A batch that mixes odd structures (isolated atoms, a molecule in a box, a
one-atom cell) with ordinary crystals is where batched engines break: one
structure's shape must never change, or fail, its neighbours' results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc111, molecule

__all__ = ["check_batch_consistency", "odd_structures"]


def odd_structures() -> dict[str, Atoms]:
    """Structures that batched engines get wrong, with ordinary crystals.

    - ``dilute``: a periodic Ar cell whose 8 atoms have no neighbour within
      any released model's cutoff (12 Å apart);
    - ``atom_in_box``: one atom alone in a periodic box;
    - ``molecule_in_box``: a water molecule in 12 Å of periodic vacuum;
    - ``free_molecule``: CO without a cell;
    - ``one_atom_cell``: primitive fcc Al;
    - ``slab_with_lone_atoms``: a Cu(111) slab with three atoms far out in
      its vacuum (desorbed), so one structure has atoms with and without
      neighbours;
    - ``crystal``: a rattled 8-atom Cu cell and a rattled 8-atom Si cell.
    """
    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (1, 1, 2)
    cu.rattle(0.05, seed=11)
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    si.rattle(0.05, seed=12)
    water = molecule("H2O")
    water.center(vacuum=6.0)
    water.pbc = True
    slab = fcc111("Cu", size=(3, 3, 3), vacuum=16.0)
    top = slab.positions[:, 2].max()
    for k, height in enumerate((6.5, 13.0, 19.5)):
        slab.append("Ar")
        slab.positions[-1] = [1.3 * k, 0.7 * k, top + height]
    return {
        "dilute": bulk("Ar", "fcc", a=12.0) * (2, 2, 2),
        "crystal_cu": cu,
        "atom_in_box": Atoms(
            "Ne", positions=[[5.0, 5.0, 5.0]], cell=[10.0] * 3, pbc=True
        ),
        "molecule_in_box": water,
        "crystal_si": si,
        "free_molecule": molecule("CO"),
        "one_atom_cell": bulk("Al", "fcc", a=4.04),
        "slab_with_lone_atoms": slab,
    }


def _snapshot(atoms: Atoms) -> tuple:
    return (
        atoms.get_chemical_symbols(),
        atoms.positions.copy(),
        atoms.cell.array.copy(),
        atoms.pbc.copy(),
    )


def _same(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and all(
        np.array_equal(x, y) for x, y in zip(a[1:], b[1:], strict=True)
    )


def check_batch_consistency(
    run: Callable[[Sequence[Any]], Sequence[Any]],
    structures: Sequence[Atoms],
    fields: Sequence[str] = ("energy", "forces", "stress"),
) -> dict[str, float]:
    """Largest deviations between one batched call and one call per structure.

    Parameters
    ----------
    run : callable
        Takes a list of structures and returns one result per structure
        (e.g. ``lambda s: predict(s, model="7net-0")``); each result must
        have ``error`` (None when it succeeded) and the ``fields``.
    structures : sequence of ase.Atoms
        The batch; none may be modified by ``run``.
    fields : sequence of str
        Attributes compared.  ``energy`` is compared per atom.

    Returns
    -------
    dict
        The largest absolute deviation of each field, and ``modified``: the
        number of inputs ``run`` changed.

    Raises
    ------
    AssertionError
        If a structure failed, batched or alone (its error is in the message).
    """
    before = [_snapshot(a) for a in structures]
    batched = list(run(list(structures)))
    single = [run([a])[0] for a in structures]
    worst = dict.fromkeys(fields, 0.0)
    for i, (atoms, b, s) in enumerate(zip(structures, batched, single, strict=True)):
        for which, res in (("batched", b), ("alone", s)):
            if res.error is not None:
                raise AssertionError(f"structure {i} failed {which}: {res.error}")
        for name in fields:
            x, y = getattr(b, name), getattr(s, name)
            if x is None or y is None:
                if (x is None) != (y is None):
                    raise AssertionError(f"structure {i}: {name} missing on one side")
                continue
            diff = float(np.abs(np.asarray(x) - np.asarray(y)).max())
            if name == "energy":
                diff /= len(atoms)
            worst[name] = max(worst[name], diff)
    worst["modified"] = float(
        sum(not _same(a, _snapshot(s)) for a, s in zip(before, structures, strict=True))
    )
    return worst
