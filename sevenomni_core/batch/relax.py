"""Batched relaxation of many structures at once, by FIRE, L-BFGS or BFGS.

Every step evaluates all active structures in one forward pass.  Each
structure keeps its own optimiser state (the algorithms and parameters of
ASE's ``FIRE``, ``LBFGS`` and ``BFGS``, see :mod:`.optimizers`), converges
on its own (``fmax`` over atoms and, with ``relax_cell``, the cell as in
ASE's ``FrechetCellFilter``), and leaves the batch when done, making room
for the next.  This module holds the geometry (generalised coordinates,
fixed atoms, the cell) and the loop shared by all optimisers.

A structure that diverges fails alone, with an error naming the rule.  A
structure has diverged when

- its energy or forces are not finite, or a force exceeds
  :data:`DIVERGED_FORCE`;
- two atoms (or an atom and its periodic image) come closer than
  ``min_distance``, read from the edge lengths of the neighbour graph the
  model is evaluated on (no extra pair search);
- its energy per atom falls more than ``max_energy_drop`` below its
  starting value, the mark of a model driven into an unphysical hole.  A
  squeezed start can lie far above any physical energy, so the reference is
  the lower of the starting energy and the model's energy of the same atoms
  far apart (no neighbours); what a structure gains below the latter is its
  cohesive energy, at most about 9 eV/atom with the shipped models (W, Os).

Large volume changes are not divergence: a cell built with a guessed
lattice constant may legitimately double or triple its volume, as ASE's FIRE
+ ``FrechetCellFilter`` does too.  ``max_volume_change`` is only a wide
safety net, and a structure it stops says so.

Results can be streamed with ``on_result``, called once per input as soon as
that structure is done, so that long runs can store them as they come.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import voigt_6_to_full_3x3_stress

from ..data import MIN_DISTANCE, atoms_to_graph
from ..model.potential import Potential, as_potential
from .cell import cell_force, deformation
from .guards import (
    DIVERGED_FORCE,
    SUPPORTED_CONSTRAINTS,
    fixed_mask,
    symmetry_precision,
    too_close,
)
from .inputs import labels, per_structure, prepare
from .optimizers import FireParameters, Optimizer, optimizer_factory
from .predict import Prediction, evaluate_graphs
from .sizing import structures_per_batch
from .symmetry import Symmetry

__all__ = ["FireParameters", "RelaxResult", "relax"]

log = logging.getLogger("sevenomni")


@dataclass
class RelaxResult:
    """The outcome of one relaxation.

    Attributes
    ----------
    atoms : ase.Atoms or None
        The last structure, with its energy, forces and stress attached.
    energy : float or None
        eV, of the last structure.
    converged : bool
        Whether ``fmax`` was reached within ``max_steps``.
    steps : int
        Optimiser steps taken.
    error : str or None
        Why the relaxation failed (invalid input or divergence).
    """

    atoms: Atoms | None = None
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    converged: bool = False
    steps: int = 0
    error: str | None = None


@dataclass
class _State:
    index: int
    atoms: Atoms
    graph: dict
    fixed: np.ndarray
    relax_cell: bool
    task_index: int
    optimizer: Optimizer
    cell0: np.ndarray = field(default=None)
    r0: np.ndarray = field(default=None)
    u: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    #: The deformation gradient ``exp(u / factor)``, kept in step with ``u``.
    f_mat: np.ndarray = field(default_factory=lambda: np.eye(3))
    steps: int = 0
    energy0: float | None = None
    energy_apart: float = float("inf")
    symmetry: Symmetry | None = None

    def __post_init__(self):
        self.cell0 = self.atoms.cell.array.copy()
        self.volume0 = abs(self.atoms.get_volume()) if self.atoms.pbc.all() else 0.0
        self.r0 = self.atoms.positions.copy()
        #: Rows of the generalised coordinates the optimiser sees.
        self.free = np.concatenate([~self.fixed, np.full(3 * self.relax_cell, True)])

    @property
    def factor(self) -> float:
        return float(len(self.atoms))


def _generalised_forces(s: _State, pred: Prediction, pressure: float) -> np.ndarray:
    f_mat = s.f_mat
    cell = s.atoms.cell.array
    forces = pred.forces.copy()
    if s.symmetry is not None:
        forces = s.symmetry.forces(cell, forces)
    forces[s.fixed] = 0.0
    atom_part = forces @ f_mat
    if not s.relax_cell:
        return atom_part
    stress = voigt_6_to_full_3x3_stress(pred.stress)
    if s.symmetry is not None:
        stress = s.symmetry.stress(cell, stress)
    cell_part = cell_force(s.u, stress, s.atoms.get_volume(), s.factor, pressure, f_mat)
    return np.vstack([atom_part, cell_part])


def _generalised_positions(s: _State) -> np.ndarray:
    """Atoms in the deformation frame, then the cell's ``u`` if it relaxes."""
    return np.vstack([s.r0, s.u]) if s.relax_cell else s.r0


def _step(s: _State, force: np.ndarray) -> None:
    """Let the optimiser move the free coordinates; fixed atoms stay put."""
    dr = np.zeros_like(force)
    dr[s.free] = s.optimizer.step(_generalised_positions(s)[s.free], force[s.free])
    n = len(s.atoms)
    old = s.atoms.positions.copy()
    s.r0 = s.r0 + dr[:n]
    if s.relax_cell:
        s.u = s.u + dr[n:]
        s.f_mat = deformation(s.u, s.factor)
    f_mat = s.f_mat
    positions = s.r0 @ f_mat.T
    positions[s.fixed] = old[s.fixed]
    s.r0[s.fixed] = np.linalg.solve(f_mat, positions[s.fixed].T).T
    if s.relax_cell:
        s.atoms.set_cell(s.cell0 @ f_mat.T, scale_atoms=False, apply_constraint=False)
    s.atoms.positions = positions


def _finish(s: _State, pred: Prediction, converged: bool) -> RelaxResult:
    atoms = s.atoms.copy()
    results = {"energy": pred.energy, "free_energy": pred.energy, "forces": pred.forces}
    if pred.stress is not None:
        results["stress"] = pred.stress
    atoms.calc = SinglePointCalculator(atoms, **results)
    return RelaxResult(
        atoms=atoms,
        energy=pred.energy,
        forces=pred.forces,
        stress=pred.stress,
        converged=converged,
        steps=s.steps,
    )


def _too_close(s: _State, min_distance: float) -> RelaxResult | None:
    """A failed result if two atoms of ``s`` are closer than ``min_distance``."""
    why = too_close(s.graph, min_distance)
    if why is None:
        return None
    return RelaxResult(error=f"diverged at step {s.steps}: {why}", steps=s.steps)


def _volume_net(s: _State, max_volume_change: float) -> RelaxResult | None:
    """A failed result if the cell of ``s`` left the volume safety net."""
    ratio = s.atoms.get_volume() / s.volume0
    if 1 / max_volume_change <= ratio <= max_volume_change:
        return None
    return RelaxResult(
        error=f"stopped at step {s.steps} by the volume safety net: volume "
        f"changed by a factor {ratio:.3g} (limit {max_volume_change:g}); "
        "raise max_volume_change if this is expected",
        steps=s.steps,
    )


def relax(
    structures: Sequence[Any],
    model: str | Potential = "auto",
    task: str | Sequence[str | None] | None = None,
    fmax: float = 0.05,
    max_steps: int = 500,
    relax_cell: bool | Sequence[bool] = False,
    fixed: Sequence[Sequence[int] | None] | None = None,
    pressure: float = 0.0,
    max_volume_change: float = 10.0,
    device: str = "auto",
    dtype: str = "float32",
    backend: str | None = None,
    batch_size: int | str = "auto",
    fire: FireParameters | None = None,
    min_distance: float = MIN_DISTANCE,
    max_energy_drop: float = 10.0,
    on_result: Callable[[int, RelaxResult], None] | None = None,
    optimizer: str = "fire",
    on_step: Callable[[int], None] | None = None,
) -> list[RelaxResult]:
    """Relax many structures with FIRE, L-BFGS or BFGS, batched on one model.

    Parameters
    ----------
    structures : sequence of ase.Atoms or pymatgen structures
        Inputs (not modified).  ``FixAtoms`` constraints are honoured, and
        so is ``FixSymmetry``: forces and stress are symmetrised over the
        space group of the starting structure at the constraint's
        ``symprec`` (see :mod:`~sevenomni_core.batch.symmetry`).  Any other
        constraint fails its structure alone, naming it.
    model, task, device, dtype, backend
        As for :func:`~sevenomni_core.batch.predict`.
    fmax : float
        Convergence threshold on the largest (generalised) force, eV/Å.
    max_steps : int
        Most optimiser steps per structure.
    relax_cell : bool or one per structure
        Also relax the cell, as ASE's ``FrechetCellFilter`` (fully periodic
        structures only).
    fixed : one index list (or None) per structure, optional
        Atoms to hold fixed, besides any ``FixAtoms`` constraints.
    pressure : float
        External pressure for cell relaxation, eV/Å³.
    max_volume_change : float
        Safety net, not a divergence test: a cell relaxation whose volume
        grows or shrinks by more than this factor (> 1) is stopped with
        ``"stopped at step S by the volume safety net: volume changed by a
        factor R (limit L); raise max_volume_change if this is expected"``.
        Cells built with guessed lattice constants can change volume
        severalfold and still converge, hence the wide default.
    batch_size : int or "auto"
        Structures relaxed at once; finished ones are replaced from the queue.
    fire : FireParameters, optional
        FIRE settings (ASE's defaults); used by ``optimizer="fire"`` only.
    min_distance : float
        Floor on interatomic distances, Å, checked on every structure the
        model evaluates (from the neighbour graph's edge lengths, so it must
        be below the model's cutoff).  Closer atoms fail the structure with
        ``"diverged at step S: atoms I and J are D Å apart (floor F Å)"``
        (``"atom I and its periodic image"`` for an atom and its own image).
        Inputs closer than :data:`~sevenomni_core.data.MIN_DISTANCE` are
        already rejected as invalid before any step.
    max_energy_drop : float
        eV/atom (> 0).  A structure whose energy per atom falls more than
        this below its value at step 0 fails with ``"diverged at step S:
        energy fell X eV/atom below its start (limit L eV/atom)"``.  If the
        start lies above the model's energy of the same atoms far apart (a
        squeezed cell), that energy is the reference instead and the message
        reads ``"... below that of its atoms far apart (limit ...)"``.  The
        default stays clear of the largest cohesive energies (about
        9 eV/atom).
    on_result : callable, optional
        ``on_result(index, result)``, called once per input as soon as that
        structure is done (converged, unconverged at ``max_steps``, failed or
        invalid), with its position in ``structures``; the same object is
        returned at the end.  Exceptions it raises propagate and stop the
        relaxation.
    optimizer : {"fire", "lbfgs", "bfgs"}
        ASE's ``FIRE``, ``LBFGS`` (no line search) or ``BFGS``, with ASE's
        defaults, each structure with its own state (see
        :mod:`~sevenomni_core.batch.optimizers`).  The quasi-Newton ones
        often converge in far fewer steps near a minimum, e.g. a molecule
        on a fixed framework; BFGS keeps a dense Hessian over the free
        coordinates, so it suits structures with few free atoms.
    on_step : callable, optional
        ``on_step(n)`` after each batched step, with the number of
        structures it advanced (for progress reports).

    Returns
    -------
    list of RelaxResult
        One per input, in order.  Besides invalid inputs, a structure fails
        (``error`` set, the others unaffected) when its energy or forces are
        not finite, a force exceeds :data:`DIVERGED_FORCE` eV/Å, atoms come
        closer than ``min_distance``, its energy falls by more than
        ``max_energy_drop`` per atom, or its volume leaves the
        ``max_volume_change`` safety net.

    Examples
    --------
    >>> from ase.build import bulk
    >>> done = {}
    >>> out = relax([bulk("Cu", a=3.7)], model="7net-0", relax_cell=True,
    ...             on_result=done.__setitem__)  # doctest: +SKIP
    >>> done[0] is out[0] and out[0].converged  # doctest: +SKIP
    True
    """
    new_optimizer = optimizer_factory(optimizer, fire)
    pot = as_potential(model, device, dtype, backend)
    if not 0.0 <= min_distance < pot.cutoff:
        raise ValueError(
            f"min_distance must be in [0, {pot.cutoff:g}) Å (the model cutoff), "
            f"got {min_distance}"
        )
    if not max_energy_drop > 0.0:
        raise ValueError(f"max_energy_drop must be > 0 eV/atom, got {max_energy_drop}")
    if not max_volume_change > 1.0:
        raise ValueError(f"max_volume_change must be > 1, got {max_volume_change}")
    n = len(structures)
    tasks = per_structure(task, n, "task")
    cells = per_structure(relax_cell, n, "relax_cell")
    fixes = per_structure(fixed, n, "fixed") if fixed is not None else [None] * n
    names = labels(structures)
    results: list[RelaxResult | None] = [None] * n

    def done(i: int, result: RelaxResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    pending: deque[_State] = deque()
    for i in range(n):
        try:
            atoms, graph = prepare(pot, structures[i], tasks[i], names[i])
            if cells[i] and not atoms.pbc.all():
                raise ValueError(
                    f"{names[i]}: relax_cell needs a fully periodic structure "
                    f"(pbc={atoms.pbc.tolist()})"
                )
            mask = fixed_mask(atoms, fixes[i], names[i], SUPPORTED_CONSTRAINTS)
            symprec = symmetry_precision(atoms)
            symmetry = (
                None if symprec is None else Symmetry.of(atoms, symprec, names[i])
            )
        except (ValueError, TypeError) as err:
            done(i, RelaxResult(error=str(err)))
            continue
        _, task_index = pot.resolve_task(tasks[i])
        state = _State(
            i,
            atoms,
            graph,
            mask,
            bool(cells[i]),
            task_index,
            new_optimizer(),
            symmetry=symmetry,
        )
        close = _too_close(state, min_distance)
        if close is not None:
            done(i, close)
        else:
            pending.append(state)
    _set_energy_apart(pot, list(pending))
    capacity = structures_per_batch(pot, [s.graph for s in pending], batch_size)
    active: list[_State] = []
    while pending or active:
        while pending and len(active) < capacity:
            active.append(pending.popleft())
        preds = evaluate_graphs(pot, [s.graph for s in active], energies=False)
        if on_step is not None:
            on_step(len(active))
        still = []
        for s, pred in zip(active, preds, strict=True):
            result = _advance(s, pred, fmax, max_steps, pressure, max_energy_drop)
            if result is None and s.relax_cell:
                result = _volume_net(s, max_volume_change)
            if result is None:
                s.graph = atoms_to_graph(
                    s.atoms, pot.cutoff, pot.network.z_to_index, s.task_index
                )
                result = _too_close(s, min_distance)
            if result is None:
                still.append(s)
            else:
                done(s.index, result)
        active = still
    return results  # type: ignore[return-value]


def _advance(
    s: _State,
    pred: Prediction,
    fmax: float,
    max_steps: int,
    pressure: float,
    max_energy_drop: float,
) -> RelaxResult | None:
    """One optimiser step for ``s``; a result when it is done."""
    if not pred.ok:
        return RelaxResult(error=pred.error, steps=s.steps)
    if not np.isfinite(pred.energy) or not np.isfinite(pred.forces).all():
        return RelaxResult(
            error=f"diverged at step {s.steps}: non-finite energy or forces",
            steps=s.steps,
        )
    if np.abs(pred.forces).max() > DIVERGED_FORCE:
        return RelaxResult(
            error=f"diverged at step {s.steps}: forces above {DIVERGED_FORCE:g} eV/Å",
            steps=s.steps,
        )
    if s.energy0 is None:
        s.energy0 = pred.energy
    reference = min(s.energy0, s.energy_apart)
    drop = (reference - pred.energy) / len(s.atoms)
    if drop > max_energy_drop:
        squeezed = s.energy0 > s.energy_apart
        what = "that of its atoms far apart" if squeezed else "its start"
        return RelaxResult(
            error=f"diverged at step {s.steps}: energy fell {drop:.3g} eV/atom "
            f"below {what} (limit {max_energy_drop:g} eV/atom)",
            steps=s.steps,
        )
    force = _generalised_forces(s, pred, pressure)
    if (force**2).sum(axis=1).max() < fmax**2:
        return _finish(s, pred, converged=True)
    if s.steps >= max_steps:
        return _finish(s, pred, converged=False)
    _step(s, force)
    s.steps += 1
    return None


def _set_energy_apart(pot: Potential, states: list[_State]) -> None:
    """Set each state's ``energy_apart``: the model's energy of its atoms with
    no neighbours, from one isolated atom per element and task."""
    by_task: dict[int, set[int]] = {}
    for s in states:
        by_task.setdefault(s.task_index, set()).update(s.atoms.numbers.tolist())
    table: dict[tuple[int, int], float] = {}
    for task_index, numbers in by_task.items():
        elements = sorted(numbers)
        spacing = 2.0 * pot.cutoff
        apart = Atoms(
            numbers=elements,
            positions=[[spacing * k, 0.0, 0.0] for k in range(len(elements))],
        )
        graph = atoms_to_graph(apart, pot.cutoff, pot.network.z_to_index, task_index)
        [pred] = evaluate_graphs(pot, [graph], stress=False)
        if not pred.ok:  # no reference: the rule falls back to the start
            continue
        for z, e in zip(elements, pred.energies.tolist(), strict=True):
            table[task_index, z] = e
    for s in states:
        try:
            s.energy_apart = sum(table[s.task_index, z] for z in s.atoms.numbers)
        except KeyError:
            s.energy_apart = float("inf")
