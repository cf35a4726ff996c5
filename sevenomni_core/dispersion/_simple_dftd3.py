"""D3 of one structure by simple-dftd3 (the ``dftd3`` package), on the CPU.

simple-dftd3 (Grimme group, Fortran) evaluates D3 with analytic forces and
virial over its own periodic neighbour loops; on one CPU core it is about
ten times faster than the torch path of :mod:`._d3` (see
``benchmarks/d3_speed.py``). It is handed exactly the settings of the torch
path: the damping parameters of :meth:`D3Config.parameters` (not its own
table), the cutoffs of :class:`D3Config`, and ``s9`` for the three-body
term, so that both paths give the same numbers (tested to 1e-9 eV/atom).

Units: simple-dftd3 takes bohr and returns hartree, hartree/bohr and the
virial in hartree; results here are eV, eV/Å and eV/Å³ (ASE sign: the
stress is the virial over the volume).  It computes in float64 whatever the
model's dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.util import find_spec

import numpy as np
from tad_mctc.units import AA2AU, AU2EV

from ._config import D3Config

__all__ = ["simple_dftd3_available", "simple_dftd3_one"]

_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])


@cache
def simple_dftd3_available() -> bool:
    """Whether the ``dftd3`` package (simple-dftd3's Python API) is installed
    (looked up once per process)."""
    return find_spec("dftd3") is not None


def simple_dftd3_one(
    numbers: np.ndarray,
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray,
    params: Mapping[str, float],
    config: D3Config,
    forces: bool = True,
    stress: bool = True,
    energies: bool = True,
) -> tuple[float, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """D3 of one structure by simple-dftd3.

    Parameters
    ----------
    numbers : numpy.ndarray
        ``(n,)`` atomic numbers.
    positions : numpy.ndarray
        ``(n, 3)`` Å.
    cell : numpy.ndarray
        ``(3, 3)`` Å, lattice vectors as rows; non-singular when ``pbc`` has
        a periodic direction.
    pbc : numpy.ndarray
        ``(3,)`` bool.
    params : mapping
        Damping parameters (:meth:`D3Config.parameters`).
    config : D3Config
        Damping kind and cutoffs.
    forces, stress, energies : bool
        Which of the forces, the stress (periodic cells only) and the
        per-atom energies to return; the per-atom energies cost a second
        evaluation (simple-dftd3's pairwise decomposition) beside a gradient.

    Returns
    -------
    tuple
        Energy (eV); per-atom energies ``(n,)`` eV (two-body terms shared
        equally by the pair, three-body terms by the triple), forces ``(n,
        3)`` eV/Å and stress ``(6,)`` eV/Å³ (ASE Voigt order and sign), each
        None when not asked for (the stress also without a periodic cell).
    """
    from dftd3.interface import (
        DispersionModel,
        RationalDampingParam,
        ZeroDampingParam,
    )

    periodic = bool(np.any(pbc))
    model = DispersionModel(
        np.asarray(numbers),
        np.asarray(positions, dtype=np.float64) * AA2AU,
        np.asarray(cell, dtype=np.float64) * AA2AU if periodic else None,
        np.asarray(pbc, dtype=bool) if periodic else None,
    )
    model.set_realspace_cutoff(
        config.cutoff * AA2AU, config.atm_cutoff * AA2AU, config.cn_cutoff * AA2AU
    )
    common = {k: params[k] for k in ("s6", "s8", "s9", "alp")}
    if config.damping == "d3bj":
        damping = RationalDampingParam(a1=params["a1"], a2=params["a2"], **common)
    else:
        damping = ZeroDampingParam(rs6=params["rs6"], rs8=params["rs8"], **common)
    grad = forces or stress
    atomic = out_forces = out_stress = None
    if energies:
        pairs = model.get_pairwise_dispersion(damping)
        atomic = AU2EV * (
            pairs["additive pairwise energy"].sum(1)
            + pairs["non-additive pairwise energy"].sum(1)
        )
    if grad or not energies:
        res = model.get_dispersion(damping, grad=grad)
        energy = float(res["energy"]) * AU2EV
    else:  # energies only: one evaluation
        energy = float(atomic.sum())
    if forces:
        out_forces = -res["gradient"] * (AU2EV * AA2AU)
    if stress and periodic:
        volume = abs(float(np.linalg.det(cell)))
        out_stress = res["virial"][_VOIGT] * AU2EV / volume
    return energy, atomic, out_forces, out_stress
