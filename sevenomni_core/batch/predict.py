"""Energies, forces and stress of many structures, many per forward pass."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import _keys as K
from ..data import collate
from ..dispersion import D3Config, d3_graphs, with_dispersion
from ..model.potential import Potential, as_potential
from .inputs import labels, per_structure, prepare
from .sizing import plan_batches

__all__ = ["Prediction", "evaluate_graphs", "predict"]

log = logging.getLogger("sevenomni")


@dataclass
class Prediction:
    """The result for one structure (the calculator's conventions).

    Attributes
    ----------
    energy : float or None
        eV.
    forces : numpy.ndarray or None
        ``(N, 3)`` eV/Å.
    stress : numpy.ndarray or None
        ``(6,)`` eV/Å³, ASE sign and Voigt order; None without a periodic cell.
    energies : numpy.ndarray or None
        Per-atom energies ``(N,)``, eV (with D3 on the CPU, its share is
        computed on the first read).
    error : str or None
        Why this structure failed; the other fields are then None.
    """

    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    energies: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the structure was evaluated."""
        return self.error is None


def _run(
    potential: Potential,
    graphs: list[dict],
    stress: bool,
    forces: bool = True,
    energies: bool = True,
) -> list[Prediction]:
    batch = collate(graphs)
    batch = {k: v.to(potential.device) for k, v in batch.items()}
    stress = stress and forces
    if forces:
        out = potential.evaluate(batch, compute_forces=True, compute_stress=stress)
    else:  # energies only: no gradient pass, no autograd graph kept
        with torch.no_grad():
            out = potential.evaluate(batch, compute_forces=False, compute_stress=False)
    energy = out[K.ENERGY].detach().double().cpu().numpy()
    atomic = out[K.ATOMIC_ENERGIES].detach().double().cpu().numpy()
    force = out[K.FORCES].detach().double().cpu().numpy() if forces else None
    stresses = out[K.STRESS].detach().double().cpu().numpy() if stress else None
    deferred = False
    if potential.dispersion is not None:
        # simple-dftd3's per-atom energies cost a second pass beside the
        # gradient: deferred to the first read of Prediction.energies
        d3 = d3_graphs(potential, graphs, stress, forces, energies and not forces)
        energy = energy + d3.energy
        deferred = energies and d3.energies is None
        if energies and not deferred:
            atomic = atomic + d3.energies
        if forces:
            force = force + d3.forces
        if stress:
            stresses = stresses + d3.stress
    counts = [int(g[K.NUM_ATOMS].sum()) for g in graphs]
    bounds = np.cumsum([0, *counts])
    results = []
    for b, g in enumerate(graphs):
        lo, hi = bounds[b], bounds[b + 1]
        periodic = bool(g[K.VOLUME][0] > 0)
        fields = {
            "energy": float(energy[b]),
            "forces": None if force is None else force[lo:hi],
            "energies": atomic[lo:hi] if energies else None,
            "stress": stresses[b] if (stresses is not None and periodic) else None,
        }
        if deferred:
            results.append(_DeferredD3(potential, g, **fields))
        else:
            results.append(Prediction(**fields))
    return results


class _DeferredD3(Prediction):
    """A :class:`Prediction` whose per-atom energies get their D3 share on
    first read (simple-dftd3's pairwise pass, for this structure alone, at
    the positions and cell it was evaluated at).  It keeps what D3 reads of
    the graph (not its edges)."""

    def __init__(self, potential: Potential, graph: dict, **fields):
        super().__init__(**fields)
        kept = {k: graph[k] for k in (K.SPECIES, K.NUM_ATOMS, K.TASK, K.VOLUME)}
        kept[K.POSITIONS] = graph[K.POSITIONS].clone()
        kept[K.CELL] = graph[K.CELL].clone()
        # the pbc, or in graphs without one the edge shifts it is guessed from
        pbc = K.PBC if K.PBC in graph else K.EDGE_SHIFT
        kept[pbc] = graph[pbc]
        self._d3_of = (potential, kept)

    @property
    def energies(self) -> np.ndarray | None:
        if self._d3_of is not None:
            potential, graph = self._d3_of
            d3 = d3_graphs(potential, [graph], stress=False, forces=False)
            self._energies, self._d3_of = self._energies + d3.energies, None
        return self._energies

    @energies.setter
    def energies(self, value: np.ndarray | None) -> None:
        self._energies, self._d3_of = value, None


def evaluate_graphs(
    potential: Potential,
    graphs: list[dict],
    stress: bool = True,
    forces: bool = True,
    energies: bool = True,
) -> list[Prediction]:
    """Evaluate graphs in one pass; on an error, split the batch and retry.

    Out of memory, or any exception, bisects the batch until the structure at
    fault is alone: only it gets a :class:`Prediction` with its ``error``
    (the exception's type and message), and the others complete.

    With ``forces=False`` only energies are computed (no gradient pass), as
    for Widom insertions; ``forces`` and ``stress`` are then None.  With
    ``energies=False`` the per-atom energies are None.  With D3 on the CPU
    and forces, the per-atom energies cost simple-dftd3 a second pass, run
    on their first read only (most callers never read them).

    With ``potential.dispersion`` set, its D3 energy, forces and stress are
    added, from the same positions and cells (and the graphs' ``pbc`` when
    they carry one, see :data:`sevenomni_core.dispersion.PBC`).
    """
    try:
        return _run(potential, graphs, stress, forces, energies)
    except torch.OutOfMemoryError:
        if potential.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(graphs) == 1:
            return [Prediction(error="out of memory for this structure alone")]
        log.info("out of memory with %d structures; splitting the batch", len(graphs))
    except Exception as err:  # one structure must not fail its batch
        if len(graphs) == 1:
            return [Prediction(error=f"{type(err).__name__}: {err}")]
        log.warning(
            "evaluation of %d structures raised %s: %s; splitting the batch to "
            "find the structure at fault",
            len(graphs),
            type(err).__name__,
            err,
        )
    half = len(graphs) // 2
    return evaluate_graphs(
        potential, graphs[:half], stress, forces, energies
    ) + evaluate_graphs(potential, graphs[half:], stress, forces, energies)


def predict(
    structures: Sequence[Any],
    model: str | Potential = "auto",
    task: str | Sequence[str | None] | None = None,
    device: str = "auto",
    dtype: str = "float32",
    backend: str | None = None,
    batch_size: int | str = "auto",
    dispersion: str | D3Config | None = None,
) -> list[Prediction]:
    """Energy, forces and stress of many structures, batched.

    Parameters
    ----------
    structures : sequence of ase.Atoms or pymatgen structures
        The inputs; they are not modified.
    model : str or Potential
        As for :class:`~sevenomni_core.SevenOmniCalculator`.
    task : str, None, or one per structure
        Tasks may differ between structures of one batch.
    device, dtype : str
        Where and in which precision to evaluate.
    backend : str, optional
        Kernels: ``"e3nn"``, ``"cueq"`` or ``"auto"`` (see
        :func:`~sevenomni_core.model.load_model`); None keeps a given
        Potential's (e3nn for a name).
    batch_size : int or "auto"
        Structures per forward pass; ``"auto"`` sizes batches from a memory
        estimate (edges times feature size), with a cap.
    dispersion : str, D3Config or None
        Add DFT-D3: ``"d3bj"``, ``"d3zero"`` or a
        :class:`~sevenomni_core.dispersion.D3Config`; its parameters follow
        each structure's task.  None (default) keeps the model's own setting
        (a :class:`Potential` from ``with_dispersion`` has one), which for a
        loaded model is no dispersion.

    Returns
    -------
    list of Prediction
        One per input, in order.  A structure that cannot be evaluated gets
        its ``error`` and the others complete.

    Examples
    --------
    >>> from ase.build import bulk
    >>> out = predict([bulk("Cu"), bulk("Si")], model="7net-0")  # doctest: +SKIP
    >>> out[0].energy  # doctest: +SKIP
    -4.09...
    """
    pot = as_potential(model, device, dtype, backend)
    if dispersion is not None:
        pot = with_dispersion(pot, dispersion)
    tasks = per_structure(task, len(structures), "task")
    if pot.dispersion is not None:  # refuse a task with dispersion in its data
        for t in dict.fromkeys(tasks):
            try:
                name = pot.resolve_task(t)[0]
            except ValueError:
                continue  # an unknown task fails its structures below
            pot.dispersion.parameters(name)
    names = labels(structures)
    results: list[Prediction | None] = [None] * len(structures)
    graphs, index = [], []
    for i, (s, t) in enumerate(zip(structures, tasks, strict=True)):
        try:
            _, g = prepare(pot, s, t, names[i])
        except (ValueError, TypeError) as err:
            results[i] = Prediction(error=str(err))
            continue
        graphs.append(g)
        index.append(i)
    for batch in plan_batches(graphs, pot.network, pot.device, batch_size):
        preds = evaluate_graphs(pot, [graphs[b] for b in batch])
        for b, p in zip(batch, preds, strict=True):
            results[index[b]] = p
    return results  # type: ignore[return-value]
