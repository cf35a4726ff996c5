"""Cell degrees of freedom equivalent to ASE's ``FrechetCellFilter``.

The cell enters the optimisation as ``u = c log(F)``, with ``F`` the
deformation gradient from the starting cell and ``c`` the number of atoms;
atoms enter as positions in the undeformed frame, ``r0 = r F^-T``.  The
generalised forces are ``f F`` for atoms and ``(1/c) dE/du`` for the cell,
where the derivative through the matrix exponential (its Fréchet adjoint)
is taken by autograd on the 3x3 matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import expm, logm

__all__ = ["cell_force", "deformation"]


def deformation(u: np.ndarray, factor: float) -> np.ndarray:
    """The deformation gradient ``F = exp(u / factor)``."""
    return expm(u / factor)


def log_deformation(f: np.ndarray, factor: float) -> np.ndarray:
    """``u = factor * log(F)`` (real part)."""
    return factor * np.real(logm(f))


def cell_force(
    u: np.ndarray,
    stress: np.ndarray,
    volume: float,
    factor: float,
    pressure: float = 0.0,
) -> np.ndarray:
    """Generalised force on the cell degrees of freedom ``u`` (3x3).

    Parameters
    ----------
    u : numpy.ndarray
        Current cell degrees of freedom.
    stress : numpy.ndarray
        Full 3x3 stress, eV/Å³ (ASE sign).
    volume : float
        Current volume, Å³.
    factor : float
        The scale ``c`` of ``u`` (number of atoms).
    pressure : float
        External scalar pressure, eV/Å³.
    """
    virial = -volume * (stress + pressure * np.eye(3))
    f_mat = deformation(u, factor)
    g = virial @ np.linalg.inv(f_mat).T  # -dE/dF
    log_f = torch.tensor(u / factor, dtype=torch.float64, requires_grad=True)
    torch.linalg.matrix_exp(log_f).backward(torch.tensor(g, dtype=torch.float64))
    return log_f.grad.numpy() / factor
