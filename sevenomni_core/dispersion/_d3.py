"""DFT-D3 energy, forces and stress of many structures, periodic or not.

The D3 model itself comes from tad-dftd3 (Grimme group): reference C6
coefficients and coordination numbers, the counting and weighting functions,
the C6 interpolation, rational damping, radii and the functional parameter
table of simple-dftd3.  tad-dftd3 evaluates molecules only (dense, no
lattice); the sum over periodic images is done here, over the pairs of a
neighbour list (vesin) within D3's own cutoffs, in the way the model sums
its messages: every term is a function of edge vectors ``r_j - r_i + S @
cell``, and forces and stress come from one gradient with respect to them.

Structures of one call are packed as in :func:`sevenomni_core.data.collate`;
each may have its own damping parameters (tasks of a batch may differ).

On the CPU, :func:`d3_packed` hands each structure to simple-dftd3 instead
(:mod:`._simple_dftd3`, same parameters and cutoffs, about ten times
faster); the torch path stays for GPUs and where simple-dftd3 is missing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
from ase import Atoms
from tad_dftd3 import defaults as tad_defaults
from tad_dftd3.damping import rational_damping
from tad_dftd3.data import R4R2
from tad_dftd3.model import atomic_c6, weight_references
from tad_dftd3.ncoord import exp_count
from tad_dftd3.reference import Reference
from tad_mctc.data import radii
from tad_mctc.units import AA2AU, AU2EV

from .. import _keys as K
from ..data import neighbor_list
from ..model.potential import Potential, resolve_device, resolve_dtype
from ._config import D3Config, resolve_dispersion
from ._simple_dftd3 import simple_dftd3_available, simple_dftd3_one

__all__ = [
    "BACKENDS",
    "PBC",
    "D3Result",
    "d3_backend",
    "d3_graphs",
    "d3_packed",
    "evaluate_d3",
]

log = logging.getLogger("sevenomni")

#: Graph key of the periodicity of each lattice direction, ``(1, 3)`` bool
#: (set by :func:`~sevenomni_core.data.atoms_to_graph`).
PBC: Final[str] = K.PBC

#: Upper bound on the three-body terms evaluated at once (memory).
ATM_CHUNK = 2_000_000


@dataclass
class D3Result:
    """D3 results of packed structures (eV, eV/Å, eV/Å³).

    Attributes
    ----------
    energy : numpy.ndarray
        ``(B,)`` eV.
    energies : numpy.ndarray or None
        ``(N,)`` eV per atom (two-body terms shared equally by the pair,
        three-body terms by the triple); None when not requested.
    forces : numpy.ndarray or None
        ``(N, 3)`` eV/Å; None when not requested.
    stress : numpy.ndarray or None
        ``(B, 6)`` eV/Å³, ASE sign and Voigt order; zero rows for structures
        without a periodic cell; None when not requested.
    """

    energy: np.ndarray
    energies: np.ndarray | None
    forces: np.ndarray | None
    stress: np.ndarray | None


_TABLES: dict[tuple[str, torch.dtype], tuple] = {}
_TABLES_LOCK = threading.Lock()


def reference_tables(device: torch.device, dtype: torch.dtype) -> tuple:
    """tad-dftd3's reference data on ``device`` in ``dtype`` (loaded once)."""
    key = (str(device), dtype)
    with _TABLES_LOCK:
        if key not in _TABLES:
            dd = {"device": device, "dtype": dtype}
            _TABLES[key] = (
                Reference(**dd),
                radii.COV_D3(**dd),  # bohr, scaled covalent radii
                R4R2(**dd),
                radii.VDW_PAIRWISE(**dd),  # bohr
            )
        return _TABLES[key]


def _pairs(
    positions: np.ndarray,
    cells: np.ndarray,
    pbcs: np.ndarray,
    counts: np.ndarray,
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ordered pairs within ``cutoff`` (Å) of every structure: i, j and the
    vectors ``r_j - r_i + S @ cell`` (float64, on the CPU)."""
    bounds = np.cumsum([0, *counts])
    ii, jj, vv = [], [], []
    for b in range(len(counts)):
        lo, hi = bounds[b], bounds[b + 1]
        i, j, shifts = neighbor_list(positions[lo:hi], cells[b], pbcs[b], cutoff)
        i, j = torch.from_numpy(i), torch.from_numpy(j)
        pos = torch.from_numpy(positions[lo:hi])
        vv.append(
            pos[j] - pos[i] + torch.from_numpy(shifts) @ torch.from_numpy(cells[b])
        )
        ii.append(i + lo)
        jj.append(j + lo)
    return torch.cat(ii), torch.cat(jj), torch.cat(vv).reshape(-1, 3)


def _stack_params(
    params: Sequence[Mapping[str, float]], keys: Sequence[str], dd: dict
) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([p[k] for p in params], **dd) for k in keys}


def d3_packed(
    numbers: np.ndarray,
    positions: np.ndarray,
    cells: np.ndarray,
    pbcs: np.ndarray,
    counts: np.ndarray,
    params: Sequence[Mapping[str, float]],
    config: D3Config,
    device: torch.device,
    dtype: torch.dtype,
    stress: bool = True,
    forces: bool = True,
    energies: bool = True,
    backend: str = "auto",
) -> D3Result:
    """D3 of packed structures.

    On the CPU each structure goes to simple-dftd3 when the ``dftd3``
    package is installed (:mod:`._simple_dftd3`: the same parameters and
    cutoffs, ten times faster); on other devices, or without it, all go
    through the batched torch path here (the reason logged once).

    Parameters
    ----------
    numbers : numpy.ndarray
        ``(N,)`` atomic numbers.
    positions : numpy.ndarray
        ``(N, 3)`` Å.
    cells : numpy.ndarray
        ``(B, 3, 3)`` Å, lattice vectors as rows.
    pbcs : numpy.ndarray
        ``(B, 3)`` bool.
    counts : numpy.ndarray
        ``(B,)`` atoms per structure.
    params : sequence of mappings
        Damping parameters of each structure (:meth:`D3Config.parameters`).
    config : D3Config
        Damping kind, cutoffs, three-body term.
    device, dtype
        Where and in which precision to evaluate (tables included).
    stress : bool
        Whether to return the stress (it needs ``forces``).
    forces : bool
        Whether to return the forces. Without them (and the stress) there is
        no gradient pass: energies only, as for Widom insertions.
    energies : bool
        Whether per-atom energies are needed; without them simple-dftd3
        skips its pairwise decomposition (``energies`` is then None).
    backend : str
        ``"auto"`` (above), ``"torch"`` or ``"simple-dftd3"`` (an error
        where it cannot run).
    """
    if stress and not forces:
        raise ValueError("d3_packed: the stress needs forces=True")
    if d3_backend(backend, device, cells, pbcs) == "simple-dftd3":
        return _simple_packed(
            numbers,
            positions,
            cells,
            pbcs,
            counts,
            params,
            config,
            stress,
            forces,
            energies,
        )
    counts = np.asarray(counts, dtype=np.int64)
    n_atoms, n_struct = int(counts.sum()), len(counts)
    dd = {"device": device, "dtype": dtype}
    ref, rcov, _, rvdw = reference_tables(device, dtype)
    i, j, v64 = _pairs(
        np.ascontiguousarray(positions, dtype=np.float64),
        np.ascontiguousarray(cells, dtype=np.float64),
        np.asarray(pbcs, dtype=bool),
        counts,
        config.max_cutoff,
    )
    i, j = i.to(device), j.to(device)
    vectors = v64.to(**dd).requires_grad_(forces)
    z = torch.as_tensor(np.asarray(numbers, dtype=np.int64), device=device)
    count_t = torch.as_tensor(counts, device=device)
    batch = torch.repeat_interleave(torch.arange(n_struct, device=device), count_t)
    offsets = torch.cumsum(count_t, 0) - count_t
    r = torch.linalg.vector_norm(vectors, dim=-1) * AA2AU  # bohr

    # coordination numbers, C6 of every atom pair of each structure
    m = r <= config.cn_cutoff * AA2AU
    cn = torch.zeros(n_atoms, **dd).index_add(
        0, i[m], exp_count(r[m], rcov[z[i[m]]] + rcov[z[j[m]]])
    )
    weights = weight_references(z, cn, ref)
    blocks, start = [], [0]
    for b in range(n_struct):
        lo, hi = int(offsets[b]), int(offsets[b] + count_t[b])
        c6b = atomic_c6(z[lo:hi], weights[lo:hi], ref) if hi > lo else cn[:0]
        blocks.append(c6b.reshape(-1))
        start.append(start[-1] + (hi - lo) ** 2)
    c6_flat = torch.cat(blocks)
    c6_start = torch.tensor(start[:-1], device=device)

    def pair_c6(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        s = batch[a]
        return c6_flat[c6_start[s] + (a - offsets[s]) * count_t[s] + c - offsets[s]]

    # two-body term
    m = r <= config.cutoff * AA2AU
    i2, j2, r2, s2 = i[m], j[m], r[m], batch[i[m]]
    p = _stack_params(params, DAMPING_KEYS[config.damping], dd)
    pair = pair_factor(config, p, s2, r2, z[i2], z[j2]) * pair_c6(i2, j2)
    atomic = torch.zeros(n_atoms, **dd).index_add(0, i2, pair)
    energy = torch.zeros(n_struct, **dd).index_add(0, batch, atomic)
    atm = config.atm and any(q.get("s9", 0.0) != 0.0 for q in params)
    grad = _grad(energy.sum(), vectors, retain=atm) if forces else None
    atomic = atomic.detach()

    # three-body term, in chunks of centres with their own backward
    if atm:
        p3 = _stack_params(params, ("s9", "alp"), dd)
        for e3 in _atm_chunks(i, r, config.atm_cutoff * AA2AU, n_atoms):
            e = _atm_terms(
                e3, i, j, z, vectors, batch, pair_c6, rvdw, p3, config, atomic
            )
            if e is not None and forces:
                grad = grad + _grad(e, vectors, retain=True)

    energy = torch.zeros(n_struct, **dd).index_add(0, batch, atomic)
    out_forces = None
    if forces:
        out_forces = torch.zeros(n_atoms, 3, **dd).index_add(0, i, grad)
        out_forces = out_forces.index_add(0, j, -grad).cpu().double().numpy()
    out_stress = None
    if stress:
        virial = (vectors.detach().unsqueeze(-1) * grad.unsqueeze(-2)).reshape(-1, 9)
        per = torch.zeros(n_struct, 9, **dd).index_add(0, batch[i], virial)
        per = per.reshape(-1, 3, 3)
        per = 0.5 * (per + per.transpose(1, 2))
        volume = torch.as_tensor(np.abs(np.linalg.det(cells)), **dd)
        periodic = torch.as_tensor(np.asarray(pbcs).any(axis=1), device=device)
        periodic = periodic & (volume > 0)
        safe = torch.where(periodic, volume, torch.ones_like(volume))
        voigt = per[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] / safe[:, None]
        out_stress = torch.where(periodic[:, None], voigt, 0.0).cpu().double().numpy()
    return D3Result(
        energy=energy.cpu().double().numpy(),
        energies=atomic.cpu().double().numpy(),
        forces=out_forces,
        stress=out_stress,
    )


#: Ways of evaluating D3 (:func:`d3_backend`).
BACKENDS: Final[tuple[str, ...]] = ("auto", "torch", "simple-dftd3")

_LOGGED: set[str] = set()


def d3_backend(
    backend: str, device: torch.device, cells: np.ndarray, pbcs: np.ndarray
) -> str:
    """The path D3 takes: ``"simple-dftd3"`` or ``"torch"``.

    ``"auto"`` takes simple-dftd3 on the CPU when it is installed and every
    periodic structure has a cell with a volume (it needs an invertible
    lattice), else the torch path, logging the reason once.

    Raises
    ------
    ValueError
        For an unknown ``backend``, or ``"simple-dftd3"`` where it cannot run.

    Examples
    --------
    >>> d3_backend("torch", torch.device("cpu"), np.eye(3)[None], np.ones((1, 3)))
    'torch'
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown D3 backend {backend!r}; use one of {BACKENDS}")
    if backend == "torch":
        return "torch"
    reason = None
    if torch.device(device).type != "cpu":
        reason = f"the device is {device} (simple-dftd3 runs on the CPU)"
    elif not simple_dftd3_available():
        reason = "simple-dftd3 (the dftd3 package) is not installed"
    else:
        cells, pbcs = np.asarray(cells), np.asarray(pbcs, dtype=bool)
        flat = [
            b
            for b in range(len(cells))
            if pbcs[b].any() and abs(np.linalg.det(cells[b])) < 1e-9
        ]
        if flat:
            reason = f"structure {flat[0]} of the batch is periodic in a flat cell"
    if reason is None:
        return "simple-dftd3"
    if backend == "simple-dftd3":
        raise ValueError(f"D3 backend 'simple-dftd3' cannot run: {reason}")
    if reason not in _LOGGED:
        _LOGGED.add(reason)
        log.info("dispersion: D3 takes the torch path: %s", reason)
    return "torch"


def _simple_packed(
    numbers, positions, cells, pbcs, counts, params, config, stress, forces, energies
) -> D3Result:
    """:func:`d3_packed` by simple-dftd3, one structure at a time."""
    counts = np.asarray(counts, dtype=np.int64)
    bounds = np.cumsum([0, *counts])
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    cells = np.asarray(cells, dtype=np.float64)
    pbcs = np.asarray(pbcs, dtype=bool)
    n_struct = len(counts)
    energy = np.zeros(n_struct)
    atomic = np.zeros(bounds[-1]) if energies else None
    out_forces = np.zeros((bounds[-1], 3)) if forces else None
    out_stress = np.zeros((n_struct, 6)) if stress else None
    for b in range(n_struct):
        lo, hi = bounds[b], bounds[b + 1]
        if hi == lo:
            continue
        e, a, f, s = simple_dftd3_one(
            numbers[lo:hi],
            positions[lo:hi],
            cells[b],
            pbcs[b],
            params[b],
            config,
            forces,
            stress,
            energies,
        )
        energy[b] = e
        if energies:
            atomic[lo:hi] = a
        if forces:
            out_forces[lo:hi] = f
        if stress and s is not None:
            out_stress[b] = s
    return D3Result(energy, atomic, out_forces, out_stress)


#: Damping parameters of each kind, as :meth:`D3Config.parameters` names them.
DAMPING_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "d3bj": ("s6", "s8", "a1", "a2"),
    "d3zero": ("s6", "s8", "rs6", "rs8", "alp"),
}


def pair_factor(
    config: D3Config,
    p: Mapping[str, torch.Tensor],
    s: torch.Tensor,
    r: torch.Tensor,
    zi: torch.Tensor,
    zj: torch.Tensor,
) -> torch.Tensor:
    """Two-body D3 energy of ordered pairs per unit C6 (eV per hartree·bohr⁶):
    ``-(s6 f6(r) + s8 qq f8(r)) / 2``, ``r`` in bohr, ``p`` the stacked
    parameters (:data:`DAMPING_KEYS`) of structures ``s``."""
    _, _, r4r2, rvdw = reference_tables(r.device, r.dtype)
    qq = 3.0 * r4r2[zi] * r4r2[zj]
    if config.damping == "d3bj":
        damp = {"a1": p["a1"][s], "a2": p["a2"][s]}
        t6 = rational_damping(6, r, qq, damp)
        t8 = rational_damping(8, r, qq, damp)
    else:
        t6 = _zero_damping(6, r, rvdw[zi, zj], p["rs6"][s], p["alp"][s])
        t8 = _zero_damping(8, r, rvdw[zi, zj], p["rs8"][s], p["alp"][s] + 2.0)
    return -0.5 * AU2EV * (p["s6"][s] * t6 + p["s8"][s] * qq * t8)


def _grad(energy: torch.Tensor, vectors: torch.Tensor, retain: bool) -> torch.Tensor:
    """dE/d(vectors), zeros when nothing depends on them (no pairs)."""
    if not energy.requires_grad:
        return torch.zeros_like(vectors)
    (g,) = torch.autograd.grad(energy, vectors, retain_graph=retain, allow_unused=True)
    return torch.zeros_like(vectors) if g is None else g


def _zero_damping(
    order: int, r: torch.Tensor, r0: torch.Tensor, rs: torch.Tensor, alp: torch.Tensor
) -> torch.Tensor:
    """Zero (Chai-Head-Gordon) damping over ``r**order``, as simple-dftd3:
    ``1 / (r^n (1 + 6 (rs r0 / r)^alp))`` (tad-dftd3 has rational only)."""
    return 1.0 / (r.pow(order) * (1.0 + 6.0 * (rs * r0 / r).pow(alp)))


def _atm_chunks(i: torch.Tensor, r: torch.Tensor, cutoff: float, n_atoms: int):
    """Edge indices within ``cutoff``, grouped by centre, in chunks whose
    ordered neighbour pairs number at most :data:`ATM_CHUNK` (one centre at
    least)."""
    (idx,) = torch.nonzero(r.detach() <= cutoff, as_tuple=True)
    if idx.numel() == 0:
        return
    order = torch.argsort(i[idx], stable=True)
    idx = idx[order]
    centres = i[idx]
    counts = torch.bincount(centres, minlength=n_atoms)
    work = (counts**2).cpu().numpy()
    ends = np.cumsum(counts.cpu().numpy())
    lo_atom = 0
    while lo_atom < n_atoms:
        total, hi_atom = 0, lo_atom
        while hi_atom < n_atoms and (total == 0 or total + work[hi_atom] <= ATM_CHUNK):
            total += work[hi_atom]
            hi_atom += 1
        lo = 0 if lo_atom == 0 else int(ends[lo_atom - 1])
        hi = int(ends[hi_atom - 1])
        if hi > lo:
            yield idx[lo:hi]
        lo_atom = hi_atom


def _atm_terms(
    edges, i, j, z, vectors, batch, pair_c6, rvdw, p3, config, atomic
) -> torch.Tensor | None:
    """Axilrod-Teller-Muto energy (eV) of the triples centred on the atoms of
    ``edges`` (all their ordered neighbour pairs), added to ``atomic``.

    The terms are tad-dftd3's ``dispersion_atm`` (zero damping with radii
    ``4/3 R_vdW`` and exponent ``(alp + 2) / 3``), here per image triple.
    """
    centre = i[edges]
    first = torch.unique_consecutive(centre, return_counts=True)[1]
    rep = torch.repeat_interleave(first, first)  # neighbours of each edge's centre
    a = torch.repeat_interleave(torch.arange(len(edges), device=edges.device), rep)
    group_start = torch.repeat_interleave(torch.cumsum(first, 0) - first, first)
    step = torch.arange(len(a), device=a.device) - torch.repeat_interleave(
        torch.cumsum(rep, 0) - rep, rep
    )
    c = group_start[a] + step
    keep = a != c
    a, c = edges[a[keep]], edges[c[keep]]
    vij, vik = vectors[a], vectors[c]
    vjk = vik - vij
    r2ij = (vij * vij).sum(-1) * AA2AU**2
    r2ik = (vik * vik).sum(-1) * AA2AU**2
    r2jk = (vjk * vjk).sum(-1) * AA2AU**2
    inside = r2jk.detach() <= (config.atm_cutoff * AA2AU) ** 2
    if not bool(inside.any()):
        return None
    a, c = a[inside], c[inside]
    r2ij, r2ik, r2jk = r2ij[inside], r2ik[inside], r2jk[inside]
    ai, aj, ak = i[a], j[a], j[c]
    s = batch[ai]
    zi, zj, zk = z[ai], z[aj], z[ak]
    c9 = p3["s9"][s] * torch.sqrt(
        torch.abs(pair_c6(ai, aj) * pair_c6(ai, ak) * pair_c6(aj, ak))
    )
    rs9 = tad_defaults.RS9
    r0 = (rs9 * rvdw[zi, zj]) * (rs9 * rvdw[zi, zk]) * (rs9 * rvdw[zj, zk])
    rr = r2ij * r2ik * r2jk
    r1 = torch.sqrt(rr)
    r3 = r1 * rr
    r5 = r3 * rr
    fdamp = 1.0 / (1.0 + 6.0 * (r0 / r1).pow((p3["alp"][s] + 2.0) / 3.0))
    ang = (
        0.375 * (r2ij + r2jk - r2ik) * (r2ij - r2jk + r2ik) * (-r2ij + r2jk + r2ik) / r5
        + 1.0 / r3
    )
    e = AU2EV * ang * fdamp * c9 / 6.0
    atomic.index_add_(0, ai, e.detach())
    return e.sum()


# -- adapters ------------------------------------------------------------------


def _graph_pbc(graph: Mapping[str, torch.Tensor]) -> np.ndarray:
    """The graph's pbc; without one (graphs built before the dispersion
    term existed), periodic along all three vectors when the cell has a
    volume, as ASE's default, with a warning when that is a guess."""
    if PBC in graph:
        return graph[PBC].detach().cpu().numpy().reshape(3).astype(bool)
    if float(graph[K.VOLUME][0]) <= 0:
        return np.zeros(3, dtype=bool)
    crossing = (graph[K.EDGE_SHIFT] != 0).any(0).cpu().numpy()
    if not crossing.all() and not _WARNED:
        _warn_once()
    return np.ones(3, dtype=bool)


_WARNED = False


def _warn_once() -> None:
    global _WARNED
    _WARNED = True
    log.warning(
        "dispersion: a graph carries no pbc; its cell is taken as periodic "
        "along all three vectors (a slab's vacuum direction too)"
    )


def d3_graphs(
    potential: Potential,
    graphs: Sequence[Mapping[str, torch.Tensor]],
    stress: bool,
    forces: bool = True,
    energies: bool = True,
    backend: str = "auto",
) -> D3Result:
    """``potential.dispersion`` for single-structure graphs (as from
    :func:`~sevenomni_core.data.atoms_to_graph`), on the potential's device
    and in its dtype (simple-dftd3, float64, on the CPU: :func:`d3_backend`);
    energies only with ``forces=False``; per-atom energies may be None
    with ``energies=False``."""
    config = potential.dispersion
    if config is None:
        raise ValueError(f"{potential.name} has no dispersion term")
    cfg = potential.network.config
    index_to_z = np.zeros(max(cfg.type_map.values()) + 1, dtype=np.int64)
    for zz, idx in cfg.type_map.items():
        index_to_z[idx] = zz
    names = {idx: name for name, idx in (cfg.task_map or {}).items()}
    by_task: dict[Any, dict[str, float]] = {}
    numbers, positions, cells, pbcs, counts, params = [], [], [], [], [], []
    for g in graphs:
        numbers.append(index_to_z[g[K.SPECIES].cpu().numpy()])
        positions.append(g[K.POSITIONS].detach().cpu().double().numpy())
        cells.append(g[K.CELL][0].detach().cpu().double().numpy())
        pbcs.append(_graph_pbc(g))
        counts.append(int(g[K.NUM_ATOMS][0]))
        task = names.get(int(g[K.TASK][0])) if potential.tasks else None
        if task not in by_task:
            by_task[task] = config.parameters(task)
        params.append(by_task[task])
    return d3_packed(
        np.concatenate(numbers),
        np.concatenate(positions),
        np.stack(cells),
        np.stack(pbcs),
        np.asarray(counts),
        params,
        config,
        potential.device,
        potential.dtype,
        stress,
        forces,
        energies=energies,
        backend=backend,
    )


def evaluate_d3(
    structures: Atoms | Sequence[Atoms],
    dispersion: str | D3Config = "d3bj",
    functional: str | None = "pbe",
    task: str | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    forces: bool = True,
    backend: str = "auto",
    **settings,
) -> list[D3Result]:
    """The D3 term alone for ASE structures, batched (no model needed).

    Parameters
    ----------
    structures : ase.Atoms or a sequence of them
        Periodic or not (``atoms.pbc``); they are not modified.
    dispersion : str or D3Config
        ``"d3bj"``, ``"d3zero"`` or a config.
    functional : str or None
        Damping parameters; None takes them from ``task``.
    task : str, optional
        A task name, used when ``functional`` is None.
    device, dtype
        Where and in which precision to evaluate.
    forces : bool
        False: energies only (no gradient pass; ``forces`` and ``stress``
        None).
    backend : str
        ``"auto"``, ``"torch"`` or ``"simple-dftd3"`` (:func:`d3_backend`).
    **settings
        Other fields of :class:`D3Config` (``atm``, ``cutoff``, ...).

    Returns
    -------
    list of D3Result
        One per structure, each with a batch of one (``energy`` of shape
        ``(1,)``, ``stress`` None without a periodic cell).

    Examples
    --------
    >>> from ase.build import molecule
    >>> [res] = evaluate_d3(molecule("C6H6"), "d3bj", functional="pbe")
    >>> round(float(res.energy[0]), 4)
    -0.2982
    """
    if isinstance(structures, Atoms):
        structures = [structures]
    config = resolve_dispersion(dispersion, functional, **settings)
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    params = config.parameters(task)
    counts = np.array([len(a) for a in structures], dtype=np.int64)
    res = d3_packed(
        np.concatenate([a.numbers for a in structures]),
        np.concatenate([a.positions for a in structures]).reshape(-1, 3),
        np.stack([a.cell.array for a in structures]),
        np.stack([a.pbc for a in structures]),
        counts,
        [params] * len(structures),
        config,
        dev,
        dt,
        stress=forces,
        forces=forces,
        backend=backend,
    )
    bounds = np.cumsum([0, *counts])
    out = []
    for b, atoms in enumerate(structures):
        lo, hi = bounds[b], bounds[b + 1]
        periodic = bool(atoms.pbc.any()) and abs(atoms.cell.volume) > 0
        out.append(
            D3Result(
                energy=res.energy[b : b + 1],
                energies=res.energies[lo:hi],
                forces=None if res.forces is None else res.forces[lo:hi],
                stress=res.stress[b] if (periodic and forces) else None,
            )
        )
    return out
