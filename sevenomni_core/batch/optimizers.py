"""The optimisers of the batched relaxation: FIRE, L-BFGS and BFGS.

An optimiser sees one structure's free generalised coordinates, as rows of
three: the free atoms' positions (in the deformation frame, when the cell
relaxes) and then the three rows of the cell's log-deformation.  From those
coordinates ``x`` and their forces it returns a displacement.  Fixed atoms
never reach it, so they cost nothing (BFGS's dense Hessian spans only the
free coordinates), and the geometry (deformation frame, cell, restoring
fixed atoms) stays with the caller, which drives every optimiser with the
same loop.

The algorithms and defaults are ASE's ``FIRE``, ``LBFGS`` (without line
search: only forces are used) and ``BFGS``.  On positions-only relaxations
leaving out the fixed atoms changes nothing, as their forces and
displacements are zero in ASE too.  With a relaxing cell, ASE's coordinates
of a fixed atom follow the deformation and enter the quasi-Newton updates;
here they do not.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "BFGS",
    "LBFGS",
    "OPTIMIZERS",
    "Fire",
    "FireParameters",
    "Optimizer",
    "optimizer_factory",
]


class Optimizer(Protocol):
    """One structure's optimiser state, advanced one step at a time."""

    def step(self, x: np.ndarray, force: np.ndarray) -> np.ndarray:
        """The displacement (m, 3) from coordinates and forces, both (m, 3)."""
        ...


def _longest(dr: np.ndarray) -> float:
    """The longest row (one atom's or one cell row's) displacement."""
    return float(np.linalg.norm(dr, axis=1).max(initial=0.0))


def _cap(dr: np.ndarray, maxstep: float) -> np.ndarray:
    """``dr`` scaled down, direction kept, so no row moves more than ``maxstep``."""
    longest = _longest(dr)
    return dr * (maxstep / longest) if longest >= maxstep else dr


@dataclass(frozen=True)
class FireParameters:
    """FIRE settings; the defaults are ASE's."""

    dt: float = 0.1
    maxstep: float = 0.2
    dtmax: float = 1.0
    nmin: int = 5
    finc: float = 1.1
    fdec: float = 0.5
    astart: float = 0.1
    fa: float = 0.99


class Fire:
    """FIRE, as ASE's ``FIRE`` (the step's total length is capped)."""

    def __init__(self, params: FireParameters | None = None):
        self.p = params or FireParameters()
        self.v: np.ndarray | None = None
        self.dt = self.p.dt
        self.a = self.p.astart
        self.nsteps = 0

    def step(self, x: np.ndarray, force: np.ndarray) -> np.ndarray:
        """The FIRE displacement; ``x`` is not needed."""
        p = self.p
        if self.v is None:
            self.v = np.zeros_like(force)
        else:
            vf = np.vdot(force, self.v)
            if vf > 0.0:
                self.v = (1.0 - self.a) * self.v + self.a * force / np.sqrt(
                    np.vdot(force, force)
                ) * np.sqrt(np.vdot(self.v, self.v))
                if self.nsteps > p.nmin:
                    self.dt = min(self.dt * p.finc, p.dtmax)
                    self.a *= p.fa
                self.nsteps += 1
            else:
                self.v[:] = 0.0
                self.a = p.astart
                self.dt *= p.fdec
                self.nsteps = 0
        self.v += self.dt * force
        dr = self.dt * self.v
        norm = np.sqrt(np.vdot(dr, dr))
        return p.maxstep * dr / norm if norm > p.maxstep else dr


class LBFGS:
    """Limited-memory BFGS without line search, as ASE's ``LBFGS``.

    The two-loop recursion over the last ``memory`` steps, from the constant
    inverse Hessian ``1/alpha``; the step is scaled so that no row moves more
    than ``maxstep`` (Å), then multiplied by ``damping``.
    """

    def __init__(
        self,
        maxstep: float = 0.2,
        memory: int = 100,
        damping: float = 1.0,
        alpha: float = 70.0,
    ):
        if maxstep > 1.0:
            raise ValueError(f"LBFGS maxstep must be <= 1 Å, got {maxstep}")
        self.maxstep = maxstep
        self.damping = damping
        self.alpha = alpha
        self.s: deque[np.ndarray] = deque(maxlen=memory)
        self.y: deque[np.ndarray] = deque(maxlen=memory)
        self.rho: deque[float] = deque(maxlen=memory)
        self.x0: np.ndarray | None = None
        self.g0: np.ndarray | None = None

    def step(self, x: np.ndarray, force: np.ndarray) -> np.ndarray:
        """The L-BFGS displacement, after adding the last step to the memory."""
        x, g = x.ravel().copy(), -force.ravel()
        if self.x0 is not None:
            s, y = x - self.x0, g - self.g0
            self.s.append(s)
            self.y.append(y)
            self.rho.append(1.0 / np.dot(y, s))
        q = g.copy()
        a = []
        for s, y, rho in zip(
            reversed(self.s), reversed(self.y), reversed(self.rho), strict=True
        ):
            a.append(rho * np.dot(s, q))
            q -= a[-1] * y
        z = q / self.alpha
        for s, y, rho, ai in zip(self.s, self.y, self.rho, reversed(a), strict=True):
            z += s * (ai - rho * np.dot(y, z))
        self.x0, self.g0 = x, g
        return _cap(-z.reshape(-1, 3), self.maxstep) * self.damping


class BFGS:
    """BFGS with a dense Hessian, as ASE's ``BFGS``.

    The Hessian starts as ``alpha`` times the identity and takes the BFGS
    update after each step; the step divides by the absolute eigenvalues and
    is scaled so that no row moves more than ``maxstep`` (Å).
    """

    def __init__(self, maxstep: float = 0.2, alpha: float = 70.0):
        self.maxstep = maxstep
        self.alpha = alpha
        self.hessian: np.ndarray | None = None
        self.x0: np.ndarray | None = None
        self.g0: np.ndarray | None = None

    def step(self, x: np.ndarray, force: np.ndarray) -> np.ndarray:
        """The BFGS displacement, after updating the Hessian with the last step."""
        x, g = x.ravel().copy(), -force.ravel()
        if self.hessian is None:
            self.hessian = self.alpha * np.eye(x.size)
        else:
            self._update(x - self.x0, g - self.g0)
        self.x0, self.g0 = x, g
        omega, vectors = np.linalg.eigh(self.hessian)
        dr = -vectors @ (g @ vectors / np.fabs(omega))
        return _cap(dr.reshape(-1, 3), self.maxstep)

    def _update(self, dx: np.ndarray, dg: np.ndarray) -> None:
        if np.abs(dx).max(initial=0.0) < 1e-7:  # same point again: no information
            return
        hdx = self.hessian @ dx
        self.hessian += np.outer(dg, dg) / (dx @ dg) - np.outer(hdx, hdx) / (dx @ hdx)


#: The optimisers by name.
OPTIMIZERS: dict[str, type] = {"fire": Fire, "lbfgs": LBFGS, "bfgs": BFGS}


def optimizer_factory(
    name: str, fire: FireParameters | None = None
) -> Callable[[], Optimizer]:
    """A maker of fresh optimiser states, one per structure.

    Parameters
    ----------
    name : str
        One of :data:`OPTIMIZERS`: ``"fire"``, ``"lbfgs"`` or ``"bfgs"``.
    fire : FireParameters, optional
        FIRE's settings (ASE's defaults); only with ``"fire"``.

    Raises
    ------
    ValueError
        For an unknown name, or FIRE settings given to another optimiser.

    Examples
    --------
    >>> import numpy as np
    >>> make = optimizer_factory("lbfgs")
    >>> make().step(np.zeros((1, 3)), np.array([[0.7, 0.0, 0.0]]))
    array([[0.01, 0.  , 0.  ]])
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r}; valid ones: {', '.join(OPTIMIZERS)}"
        )
    if name == "fire":
        return lambda: Fire(fire)
    if fire is not None:
        raise ValueError(f"FIRE settings given, but the optimizer is {name!r}")
    return OPTIMIZERS[name]
