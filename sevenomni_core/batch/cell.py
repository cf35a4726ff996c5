"""Cell degrees of freedom equivalent to ASE's ``FrechetCellFilter``.

The cell enters the optimisation as ``u = c log(F)``, with ``F`` the
deformation gradient from the starting cell and ``c`` the number of atoms;
atoms enter as positions in the undeformed frame, ``r0 = r F^-T``.  The
generalised forces are ``f F`` for atoms and ``(1/c) dE/du`` for the cell.
The derivative through the matrix exponential is the adjoint of its
Fréchet derivative, which is the Fréchet derivative at the transpose:
``L(Aᵀ, G)``, read from the upper-right block of ``exp([[Aᵀ, G], [0, Aᵀ]])``
(one 6x6 exponential, no autograd).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm

__all__ = ["cell_force", "deformation", "expm_gradient"]


def deformation(u: np.ndarray, factor: float) -> np.ndarray:
    """The deformation gradient ``F = exp(u / factor)``."""
    return expm(u / factor)


def expm_gradient(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The gradient of ``sum(g * expm(a))`` with respect to ``a`` (3x3 each).

    Examples
    --------
    >>> a, g = np.array([[0.1, 0.2, 0], [0, -0.1, 0], [0.3, 0, 0.05]]), np.eye(3)
    >>> h = 1e-6 * np.eye(3)[0][:, None] * np.eye(3)[1]  # perturb a[0, 1]
    >>> num = (np.sum(g * expm(a + h)) - np.sum(g * expm(a - h))) / 2e-6
    >>> bool(abs(expm_gradient(a, g)[0, 1] - num) < 1e-8)
    True
    """
    block = np.zeros((6, 6))
    block[:3, :3] = block[3:, 3:] = a.T
    block[:3, 3:] = g
    return expm(block)[:3, 3:]


def cell_force(
    u: np.ndarray,
    stress: np.ndarray,
    volume: float,
    factor: float,
    pressure: float = 0.0,
    f_mat: np.ndarray | None = None,
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
    f_mat : numpy.ndarray, optional
        ``deformation(u, factor)``, when the caller has it already.
    """
    virial = -volume * (stress + pressure * np.eye(3))
    if f_mat is None:
        f_mat = deformation(u, factor)
    g = virial @ np.linalg.inv(f_mat).T  # -dE/dF
    return expm_gradient(u / factor, g) / factor
