"""Batched nudged elastic band: many bands, all their images in one forward pass.

Each band is climbing-image NEB (Henkelman, Uberuaga and Jónsson 2000) with
the improved tangent (Henkelman and Jónsson 2000) and a spring force along
it, optimised by FIRE (ASE's, on the band's interior images taken together
as ASE's ``FIRE`` does on an ``NEB``).  The end points are fixed and
evaluated once; every step evaluates the interior images of all active
bands together, and a band that converges or fails leaves the batch.

A band is given by its two end points, interpolated linearly or by IDPP
(ASE's ``NEB.interpolate``, with the minimum-image convention), or by its
full list of images.  The end points must hold the same atoms in the same
order, with the same cell and periodicity.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.geometry import find_mic

from ..data import MIN_DISTANCE, atoms_to_graph
from ..model.potential import Potential, as_potential
from .guards import DIVERGED_FORCE, fixed_mask, too_close
from .inputs import as_atoms, per_structure, prepare
from .optimizers import Fire, FireParameters
from .predict import Prediction, evaluate_graphs
from .sizing import structures_per_batch

__all__ = ["NebResult", "interpolate", "neb"]

INTERPOLATIONS = ("idpp", "linear")


@dataclass
class NebResult:
    """The outcome of one band.

    Attributes
    ----------
    images : list of ase.Atoms or None
        All images, end points included, with energies and forces.
    energies : numpy.ndarray or None
        Energy of each image, eV (absolute; subtract ``energies[0]`` for the
        profile).
    barrier : float or None
        Forward barrier, eV: highest image minus the initial state.
    reverse_barrier : float or None
        Highest image minus the final state, eV.
    reaction_energy : float or None
        Final minus initial state, eV.
    climbing_image : int or None
        Index of the highest interior image (the climbing one with ``climb``).
    converged : bool
        Whether every NEB force component fell below ``fmax``.
    steps : int
        FIRE steps taken.
    error : str or None
        Why the band failed (bad end points or a diverged image).
    """

    images: list[Atoms] | None = None
    energies: np.ndarray | None = None
    barrier: float | None = None
    reverse_barrier: float | None = None
    reaction_energy: float | None = None
    climbing_image: int | None = None
    converged: bool = False
    steps: int = 0
    error: str | None = None


@dataclass
class _Band:
    index: int
    images: list[Atoms]  # all, end points included
    graphs: list[dict]  # interior images
    task_index: int
    fixed: np.ndarray
    optimizer: Fire
    ends: tuple[Prediction, Prediction] | None = None
    steps: int = 0

    @property
    def inner(self) -> list[Atoms]:
        return self.images[1:-1]


def _check_ends(first: Atoms, last: Atoms, label: str) -> None:
    """Refuse end points that are not the same atoms in the same cell."""
    if len(first) != len(last):
        raise ValueError(f"{label}: end points have {len(first)} and {len(last)} atoms")
    diff = np.flatnonzero(first.numbers != last.numbers)
    if diff.size:
        i = int(diff[0])
        raise ValueError(
            f"{label}: end points differ in element or order at atom {i} "
            f"({first.get_chemical_symbols()[i]} vs {last.get_chemical_symbols()[i]})"
        )
    if (first.pbc != last.pbc).any():
        raise ValueError(
            f"{label}: end points differ in periodicity "
            f"({first.pbc.tolist()} vs {last.pbc.tolist()})"
        )
    if not np.allclose(first.cell.array, last.cell.array, atol=1e-6):
        raise ValueError(f"{label}: end points have different cells")


def interpolate(
    first: Atoms, last: Atoms, n_images: int, method: str = "idpp"
) -> list[Atoms]:
    """``n_images`` interior images between two end points, end points included.

    The final point is first brought next to the initial one by the
    minimum-image convention, so that an atom that crossed the cell
    boundary moves the short way.
    """
    if method not in INTERPOLATIONS:
        raise ValueError(
            f"unknown interpolation {method!r}; choose from {list(INTERPOLATIONS)}"
        )
    from ase.mep import NEB

    last = last.copy()
    if first.pbc.any():
        d, _ = find_mic(last.positions - first.positions, first.cell, first.pbc)
        last.positions = first.positions + d
    images = [first.copy()] + [first.copy() for _ in range(n_images)] + [last]
    NEB(images, method="improvedtangent").interpolate(method=method)
    for image in images:
        image.calc = None
    return images


def _tangent(r: list[np.ndarray], e: np.ndarray, i: int) -> tuple[np.ndarray, float]:
    """The improved tangent at image ``i`` (unit) and the spring stretch."""
    t_plus, t_minus = r[i + 1] - r[i], r[i] - r[i - 1]
    e_prev, e_i, e_next = e[i - 1], e[i], e[i + 1]
    if e_next > e_i > e_prev:
        tau = t_plus
    elif e_next < e_i < e_prev:
        tau = t_minus
    else:
        dmax = max(abs(e_next - e_i), abs(e_prev - e_i))
        dmin = min(abs(e_next - e_i), abs(e_prev - e_i))
        if e_next > e_prev:
            tau = t_plus * dmax + t_minus * dmin
        else:
            tau = t_plus * dmin + t_minus * dmax
    norm = np.linalg.norm(tau)
    tau = tau / norm if norm > 0 else tau
    stretch = float(np.linalg.norm(t_plus) - np.linalg.norm(t_minus))
    return tau, stretch


def neb_forces(
    positions: list[np.ndarray],
    energies: np.ndarray,
    forces: list[np.ndarray],
    k: float,
    climb: bool,
) -> tuple[np.ndarray, int]:
    """The NEB forces on the interior images, stacked ``(n_inner * N, 3)``.

    Parameters
    ----------
    positions : list of (N, 3) arrays
        All images, end points included.
    energies : array
        All images' energies, eV.
    forces : list of (N, 3) arrays
        The interior images' true forces, eV/Å.
    k : float
        Spring constant, eV/Å².
    climb : bool
        Whether the highest interior image climbs.

    Returns
    -------
    forces, imax
        The NEB forces and the index of the highest interior image.
    """
    n = len(positions)
    imax = 1 + int(np.argmax(energies[1:-1]))
    out = []
    for i in range(1, n - 1):
        tau, stretch = _tangent(positions, energies, i)
        f = forces[i - 1]
        along = np.vdot(f, tau)
        if climb and i == imax:
            out.append(f - 2 * along * tau)
        else:
            out.append(f - along * tau + k * stretch * tau)
    return np.concatenate(out), imax


def _prepare_band(pot, band, n_images, method, task, label):
    """All images of a band as atoms (end points checked), and their graphs."""
    if isinstance(band, (list, tuple)) and len(band) >= 2:
        atoms = [as_atoms(x) for x in band]
    else:
        raise ValueError(f"{label}: a band is a pair of end points or a list of images")
    _check_ends(atoms[0], atoms[-1], label)
    for i, image in enumerate(atoms[1:-1], start=1):
        _check_ends(atoms[0], image, f"{label}, image {i}")
    if len(atoms) == 2:
        if n_images < 1:
            raise ValueError(f"n_images must be >= 1, got {n_images}")
        atoms = interpolate(atoms[0], atoms[1], n_images, method)
    graphs = []
    for i, image in enumerate(atoms):
        image, graph = prepare(pot, image, task, f"{label}, image {i}")
        atoms[i] = image
        graphs.append(graph)
    return atoms, graphs


def neb(
    bands: Sequence[Sequence[Any]],
    model: str | Potential = "auto",
    task: str | Sequence[str | None] | None = None,
    n_images: int = 5,
    climb: bool = True,
    fmax: float = 0.05,
    max_steps: int = 500,
    k: float = 0.1,
    interpolation: str = "idpp",
    fixed: Sequence[Sequence[int] | None] | None = None,
    fire: FireParameters | None = None,
    device: str = "auto",
    dtype: str = "float32",
    backend: str | None = None,
    batch_size: int | str = "auto",
    min_distance: float = MIN_DISTANCE,
    on_result: Callable[[int, NebResult], None] | None = None,
) -> list[NebResult]:
    """Climbing-image NEB of many bands at once, batched on one model.

    Parameters
    ----------
    bands : sequence
        Each band is ``(initial, final)`` (ASE or pymatgen structures,
        ideally relaxed) or a full list of images, end points included.
    model, task, device, dtype, backend
        As for :func:`~sevenomni_core.batch.predict`; one task per band.
    n_images : int
        Interior images of bands given by their end points.
    climb : bool
        Climbing image on the highest interior image.
    fmax : float
        Convergence threshold on the NEB forces, eV/Å.
    max_steps : int
        Most FIRE steps per band.
    k : float
        Spring constant, eV/Å² (ASE's default).
    interpolation : {"idpp", "linear"}
        Initial path of bands given by their end points.
    fixed : one index list (or None) per band, optional
        Atoms held fixed in every image, besides ``FixAtoms`` constraints of
        the initial point.
    fire : FireParameters, optional
        FIRE settings (ASE's defaults).
    batch_size : int or "auto"
        Images evaluated at once; whole bands join and leave the batch.
    min_distance : float
        Floor on interatomic distances in every image, Å.
    on_result : callable, optional
        ``on_result(index, result)`` once per band as soon as it is done.

    Returns
    -------
    list of NebResult
        One per band, in order; a band with bad end points or a diverged
        image has ``error`` set and the others are unaffected.
    """
    pot = as_potential(model, device, dtype, backend)
    if not fmax > 0 or max_steps < 0 or not k > 0:
        raise ValueError(
            f"neb needs fmax > 0, max_steps >= 0 and k > 0 "
            f"(got {fmax}, {max_steps}, {k})"
        )
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"unknown interpolation {interpolation!r}; "
            f"choose from {list(INTERPOLATIONS)}"
        )
    n = len(bands)
    tasks = per_structure(task, n, "task")
    fixes = per_structure(fixed, n, "fixed") if fixed is not None else [None] * n
    results: list[NebResult | None] = [None] * n

    def done(i: int, result: NebResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    pending: list[_Band] = []
    ends: list[dict] = []
    for i in range(n):
        label = f"band {i}"
        try:
            images, graphs = _prepare_band(
                pot, bands[i], n_images, interpolation, tasks[i], label
            )
            mask = fixed_mask(as_atoms(bands[i][0]), fixes[i], label)
        except (ValueError, TypeError) as err:
            done(i, NebResult(error=str(err)))
            continue
        for image in images:
            image.constraints = []
        band = _Band(
            i, images, graphs[1:-1], pot.resolve_task(tasks[i])[1], mask, Fire(fire)
        )
        why = _close_image(band, min_distance)
        if why is not None:
            done(i, NebResult(error=why))
            continue
        pending.append(band)
        ends += [graphs[0], graphs[-1]]
    end_preds = _evaluate(pot, ends)
    queue: deque[_Band] = deque()
    for b, band in enumerate(pending):
        first, last = end_preds[2 * b], end_preds[2 * b + 1]
        bad = next((p.error for p in (first, last) if not p.ok), None)
        if bad is not None:
            done(band.index, NebResult(error=f"band {band.index}, end point: {bad}"))
            continue
        band.ends = (first, last)
        queue.append(band)
    capacity = structures_per_batch(
        pot, [g for b in queue for g in b.graphs], batch_size
    )
    active: list[_Band] = []
    while queue or active:
        while queue and (
            not active
            or sum(len(b.graphs) for b in active) + len(queue[0].graphs) <= capacity
        ):
            active.append(queue.popleft())
        preds = _evaluate(pot, [g for b in active for g in b.graphs])
        still, start = [], 0
        for band in active:
            mine = preds[start : start + len(band.graphs)]
            start += len(band.graphs)
            result = _advance(band, mine, fmax, max_steps, k, climb)
            if result is None:
                band.graphs = [
                    atoms_to_graph(
                        image, pot.cutoff, pot.network.z_to_index, band.task_index
                    )
                    for image in band.inner
                ]
                why = _close_image(band, min_distance)
                if why is not None:
                    result = NebResult(error=why, steps=band.steps)
            if result is None:
                still.append(band)
            else:
                done(band.index, result)
        active = still
    return results  # type: ignore[return-value]


def _evaluate(pot: Potential, graphs: list[dict]) -> list[Prediction]:
    return evaluate_graphs(pot, graphs, stress=False) if graphs else []


def _with_results(image: Atoms, pred: Prediction) -> Atoms:
    """A copy of ``image`` carrying its energy and forces."""
    out = image.copy()
    out.calc = SinglePointCalculator(
        out, energy=pred.energy, free_energy=pred.energy, forces=pred.forces
    )
    return out


def _close_image(band: _Band, min_distance: float) -> str | None:
    """Why an interior image of ``band`` has atoms too close, or None."""
    for i, graph in enumerate(band.graphs, start=1):
        why = too_close(graph, min_distance)
        if why is not None:
            return f"band {band.index}, image {i}: diverged at step {band.steps}: {why}"
    return None


def _advance(
    band: _Band, preds: list[Prediction], fmax: float, max_steps: int, k, climb
) -> NebResult | None:
    """One FIRE step of ``band``; its result when it is done."""
    for i, pred in enumerate(preds, start=1):
        where = f"band {band.index}, image {i}"
        if not pred.ok:
            return NebResult(error=f"{where}: {pred.error}", steps=band.steps)
        if not np.isfinite(pred.energy) or not np.isfinite(pred.forces).all():
            return NebResult(
                error=f"{where}: diverged at step {band.steps}: non-finite energy "
                "or forces",
                steps=band.steps,
            )
        if np.abs(pred.forces).max() > DIVERGED_FORCE:
            return NebResult(
                error=f"{where}: diverged at step {band.steps}: forces above "
                f"{DIVERGED_FORCE:g} eV/Å",
                steps=band.steps,
            )
    first, last = band.ends
    energies = np.array([first.energy, *(p.energy for p in preds), last.energy])
    true = []
    for pred in preds:
        f = pred.forces.copy()
        f[band.fixed] = 0.0
        true.append(f)
    positions = [image.positions for image in band.images]
    force, imax = neb_forces(positions, energies, true, k, climb)
    converged = (force**2).sum(axis=1).max() < fmax**2
    if converged or band.steps >= max_steps:
        everything = [first, *preds, last]
        top = float(energies.max())
        return NebResult(
            images=[
                _with_results(image, pred)
                for image, pred in zip(band.images, everything, strict=True)
            ],
            energies=energies,
            barrier=top - energies[0],
            reverse_barrier=top - energies[-1],
            reaction_energy=float(energies[-1] - energies[0]),
            climbing_image=imax,
            converged=bool(converged),
            steps=band.steps,
        )
    dr = band.optimizer.step(None, force)
    n_atoms = len(band.images[0])
    for j, image in enumerate(band.inner):
        step = dr[j * n_atoms : (j + 1) * n_atoms]
        step[band.fixed] = 0.0
        image.positions = image.positions + step
    band.steps += 1
    return None
