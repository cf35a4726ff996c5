"""Guest insertions in rigid frameworks, evaluated in shared batched passes.

Energy-only model calls for many placements of rigid guests in rigid
frameworks (Widom insertion): each placement is a graph of framework +
guest, built :data:`CHUNK` at a time and packed into batches by
:func:`~sevenomni_core.batch.sizing.plan_batches`.
"""

from __future__ import annotations

import numpy as np

from sevenomni_core.batch.predict import evaluate_graphs
from sevenomni_core.batch.sizing import plan_batches
from sevenomni_core.data import atoms_to_graph

__all__ = ["CHUNK", "batched_energies", "insertion_energies"]

#: Insertions whose graphs are built and evaluated together.
CHUNK = 512


def batched_energies(pot, task, jobs, batch_size="auto") -> list[np.ndarray]:
    """E(framework + guest), eV, of each placement of each job, in shared passes.

    ``jobs`` holds ``(framework, guest, placed)`` triples, ``placed`` the
    guest positions ``(n, len(guest), 3)``.  A placement the model could
    not evaluate gets NaN.
    """
    _, task_index = pot.resolve_task(task)
    out = [np.full(len(placed), np.nan) for _, _, placed in jobs]
    todo = [(j, i) for j, (_, _, placed) in enumerate(jobs) for i in range(len(placed))]
    combined = [framework + guest for framework, guest, _ in jobs]
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        graphs = []
        for j, i in chunk:
            atoms = combined[j]
            atoms.positions[len(jobs[j][0]) :] = jobs[j][2][i]
            graphs.append(
                atoms_to_graph(atoms, pot.cutoff, pot.network.z_to_index, task_index)
            )
        for batch in plan_batches(graphs, pot.network, pot.device, batch_size):
            preds = evaluate_graphs(pot, [graphs[b] for b in batch], forces=False)
            for b, pred in zip(batch, preds, strict=True):
                if pred.ok:
                    j, i = chunk[b]
                    out[j][i] = pred.energy
    return out


def insertion_energies(pot, task, framework, guest, placed, batch_size="auto"):
    """E(framework + guest) for each placement, eV, in batched energy-only passes.

    A placement the model could not evaluate gets NaN.
    """
    return batched_energies(pot, task, [(framework, guest, placed)], batch_size)[0]
