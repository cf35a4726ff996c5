"""Guest insertions in rigid frameworks, evaluated in shared batched passes.

Energy-only model calls for many placements of rigid guests in rigid
frameworks (Widom insertion): each placement is a graph of framework +
guest, built :data:`CHUNK` at a time and packed into batches by
:func:`~sevenomni_core.batch.sizing.plan_batches`.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["CHUNK", "batched_energies", "insertion_energies"]

log = logging.getLogger("sevenomni")

#: Insertions whose graphs are built and evaluated together.
CHUNK = 512


def batched_energies(pot, task, jobs, batch_size="auto") -> list[np.ndarray]:
    """E(framework + guest), eV, of each placement of each job, in shared passes.

    ``jobs`` holds ``(framework, guest, placed)`` triples, ``placed`` the
    guest positions ``(n, len(guest), 3)``.  A placement the model could
    not evaluate gets NaN.  The model's two-body D3 term, if it has one, is
    evaluated per rigid framework (:class:`RigidHostD3`, the same energies
    as the full sum, a small fraction of its cost).
    """
    from sevenomni_core.batch.predict import evaluate_graphs
    from sevenomni_core.batch.sizing import plan_batches
    from sevenomni_core.data import atoms_to_graph
    from sevenomni_core.dispersion import RigidHostD3, with_dispersion

    task_name, task_index = pot.resolve_task(task)
    out = [np.full(len(placed), np.nan) for _, _, placed in jobs]
    d3 = pot.dispersion
    hosts = None
    if d3 is not None and not d3.atm and all(_rigid(f, g) for f, g, _ in jobs):
        params = d3.parameters(task_name)
        try:
            hosts = [
                RigidHostD3(f, g.numbers, d3, params, pot.device) for f, g, _ in jobs
            ]
            pot = with_dispersion(pot, None)
        except Exception as err:  # the full sum, in the model's passes, instead
            log.warning(
                "rigid-host D3 failed (%s: %s); full D3 sums", type(err).__name__, err
            )
            hosts = None
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
    for j, host in enumerate(hosts or []):
        ok = np.isfinite(out[j])
        try:
            out[j][ok] += host.energies(jobs[j][2][ok])
        except Exception as err:  # this job's insertions fail, the others stand
            log.warning("D3 of job %d failed: %s: %s", j, type(err).__name__, err)
            out[j][:] = np.nan
    return out


def _rigid(framework, guest) -> bool:
    """Whether the framework's D3 can be evaluated as a rigid host."""
    from sevenomni_core.dispersion import RigidHostD3

    return bool(np.all(framework.pbc)) and RigidHostD3.fits(framework, guest.numbers)


def insertion_energies(pot, task, framework, guest, placed, batch_size="auto"):
    """E(framework + guest) for each placement, eV, in batched energy-only passes.

    A placement the model could not evaluate gets NaN.
    """
    return batched_energies(pot, task, [(framework, guest, placed)], batch_size)[0]
