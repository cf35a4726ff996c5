"""Insertion proposals for Widom sampling, with exact importance weights.

Widom's average is over guest poses (centre of mass ``x`` uniform in the
cell of volume V, orientation ``R`` uniform on SO(3)):

    ⟨h⟩ = ∫ h(x, R) p(x, R),     p = 1/V  (times the normalised Haar measure)

A few poses (the strong sites) carry almost all of ``h = exp(−βΔE)``.  A
:class:`MixtureProposal` draws from

    q = (1 − λ) p + λ Σ_k π_k G_σ(x − x_k) F_κ(R b · a_k)

uniform with probability 1 − λ, else near site k (probability π_k): the
centre a periodic Gaussian of width σ about x_k and, for a linear guest
(body axis ``b``), the axis ``R b`` drawn from a von Mises-Fisher
distribution about the site's axis a_k (κ = 1/s², s the angular spread),
with the spin about it uniform; other guests keep uniform orientations at
the sites.  Each draw carries the weight

    w = p/q = 1 / [(1 − λ) + λ V Σ_k π_k G_σ(x − x_k) F_κ(R b · a_k)]

(F_κ the axis density relative to the uniform sphere), so that the mean of
``w h`` is ⟨h⟩ exactly, whatever the sites: they only change the variance,
and ``w ≤ 1/(1 − λ)``, so a poor site list costs at most a factor
1/(1 − λ) (a defensive mixture, Hesterberg, Technometrics 37, 185 (1995)).
The spin is left uniform on purpose: a linear guest's energy does not
depend on it, and a proposal peaked in it would leave most of the
equivalent orientations to the uniform part (rare, heavy hits).  For the
same reason a symmetric linear guest (CO2, N2) needs both axis signs as
sites.  ``G_σ`` sums every periodic image within 8σ of the draw (the rest
weigh less than e^−32).

Everything here is independent of the model, so that tests can check it
with an analytic potential.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from .averages import periodic_images, wrapped

__all__ = ["SAMPLINGS", "MixtureProposal", "axis_density", "both_ends", "place"]

#: How insertions are drawn: ``biased`` (a mixture proposal near the sites,
#: reweighted) or ``uniform`` (the plain Widom estimator, the oracle).
SAMPLINGS = ("biased", "uniform")

#: Site Gaussians are summed out to this many widths from a draw.
REACH = 8.0


def axis_density(cosine: np.ndarray, spread) -> np.ndarray:
    """Von Mises-Fisher density of an axis, relative to the uniform sphere.

    ``cosine`` is the axis' cosine with the mean direction; κ = 1/spread²
    (``spread`` a number or an array broadcasting with ``cosine``).

    >>> round(float(axis_density(np.array([1.0]), 0.5)[0]), 3)  # 2κ/(1 − e^−2κ)
    8.003
    """
    kappa = 1.0 / np.asarray(spread, dtype=float) ** 2
    norm = 2 * kappa / -np.expm1(-2 * kappa)
    return norm * np.exp(kappa * (np.asarray(cosine, dtype=float) - 1))


def _axes(mean: np.ndarray, spread: np.ndarray, rng: np.random.Generator):
    """Unit vectors drawn from von Mises-Fisher distributions about ``mean`` (n, 3)."""
    n = len(mean)
    kappa = 1.0 / spread**2
    xi = rng.random(n)
    cos = 1 + np.log(xi + (1 - xi) * np.exp(-2 * kappa)) / kappa
    sin = np.sqrt(np.clip(1 - cos**2, 0, None))
    phi = 2 * np.pi * rng.random(n)
    e1 = np.cross(mean, [1.0, 0.0, 0.0])
    small = np.linalg.norm(e1, axis=1) < 1e-6
    e1[small] = np.cross(mean[small], [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    e2 = np.cross(mean, e1)
    return (
        cos[:, None] * mean
        + (sin * np.cos(phi))[:, None] * e1
        + (sin * np.sin(phi))[:, None] * e2
    )


def _aligning(body: np.ndarray, axes: np.ndarray, rng) -> np.ndarray:
    """Rotations taking ``body`` to each of ``axes``, uniform in the spin about it."""
    n = len(axes)
    spin = Rotation.from_rotvec(axes * (2 * np.pi * rng.random(n))[:, None])
    cross = np.cross(body, axes)
    sin = np.linalg.norm(cross, axis=1)
    angle = np.arctan2(sin, axes @ body)
    unit = np.where(
        sin[:, None] > 1e-9,
        cross / np.maximum(sin, 1e-300)[:, None],
        np.cross(body, _perpendicular(body))[None, :],
    )
    turn = Rotation.from_rotvec(unit * angle[:, None])
    return (spin * turn).as_matrix()


def _perpendicular(v: np.ndarray) -> np.ndarray:
    other = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 else np.array([0, 1.0, 0])
    out = np.cross(v, other)
    return out / np.linalg.norm(out)


@dataclass
class MixtureProposal:
    """Uniform insertions mixed with insertions near sites (exact weights).

    Parameters
    ----------
    cell : numpy.ndarray
        ``(3, 3)`` cell vectors (rows), Å.
    centres : numpy.ndarray
        ``(K, 3)`` site centres (the guest's centre of mass), Å; none gives
        the uniform proposal (every weight 1).
    axes : numpy.ndarray, optional
        ``(K, 3)`` unit axes of a linear guest at the sites; None draws
        orientations uniformly at the sites too.
    body_axis : numpy.ndarray, optional
        ``(3,)`` the linear guest's axis in its own frame (with ``axes``).
    mixing : float
        λ, the share of draws near the sites, in [0, 1).
    width : float or numpy.ndarray
        σ, Å, of the Gaussian about each centre (one, or one per site).
    spread : float or numpy.ndarray
        s, rad, of the axis about each site axis (κ = 1/s²; one, or per site).
    shares : numpy.ndarray, optional
        π_k, the sites' shares of the site draws (default equal).
    """

    cell: np.ndarray
    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    axes: np.ndarray | None = None
    body_axis: np.ndarray | None = None
    mixing: float = 0.5
    width: float | np.ndarray = 0.4
    spread: float | np.ndarray = 0.35
    shares: np.ndarray | None = None

    def __post_init__(self):
        self.cell = np.asarray(self.cell, dtype=float)
        self.centres = np.asarray(self.centres, dtype=float).reshape(-1, 3)
        k = len(self.centres)
        if not 0 <= self.mixing < 1:
            raise ValueError(f"mixing must lie in [0, 1), got {self.mixing}")
        self.width = np.broadcast_to(np.asarray(self.width, float), (k,)).copy()
        self.spread = np.broadcast_to(np.asarray(self.spread, float), (k,)).copy()
        if k and (self.width.min() <= 0 or self.spread.min() <= 0):
            raise ValueError("width and spread must be > 0")
        if self.axes is not None:
            axes = np.asarray(self.axes, dtype=float).reshape(k, 3)
            self.axes = axes / np.linalg.norm(axes, axis=1)[:, None]
            body = np.asarray(self.body_axis, dtype=float)
            self.body_axis = body / np.linalg.norm(body)
        shares = np.full(k, 1.0 / max(k, 1)) if self.shares is None else self.shares
        self.shares = np.asarray(shares, dtype=float) / max(np.sum(shares), 1e-300)
        if not k:
            self.mixing = 0.0

    @property
    def volume(self) -> float:
        """Cell volume, Å³."""
        return float(abs(np.linalg.det(self.cell)))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws: centres ``(n, 3)`` in the cell, Å; rotations ``(n, 3, 3)``."""
        near = rng.random(n) < self.mixing
        frac = rng.random((n, 3))
        rotations = Rotation.random(n, random_state=rng).as_matrix()
        m = int(near.sum())
        if m:
            site = rng.choice(len(self.centres), size=m, p=self.shares)
            x = self.centres[site] + rng.normal(size=(m, 3)) * self.width[site, None]
            frac[near] = np.linalg.solve(self.cell.T, x.T).T % 1.0
            if self.axes is not None:
                axes = _axes(self.axes[site], self.spread[site], rng)
                rotations[near] = _aligning(self.body_axis, axes, rng)
        return frac @ self.cell, rotations

    def ratios(self, centres: np.ndarray, rotations: np.ndarray) -> np.ndarray:
        """q/p_uniform of each draw ``(n,)``: 1 for the uniform proposal.

        The Gaussians are summed over every periodic image of a site within
        :data:`REACH` widths of the draw (the rest weigh below e^−32).
        """
        centres = np.asarray(centres, dtype=float).reshape(-1, 3)
        if not self.mixing:
            return np.ones(len(centres))
        inside = wrapped(self.cell, centres)
        images, owner = periodic_images(self.cell, self.centres)
        pairs = cKDTree(inside).sparse_distance_matrix(
            cKDTree(images), REACH * self.width.max(), output_type="coo_matrix"
        )
        i, k = pairs.row, owner[pairs.col]
        width = self.width[k]
        value = (2 * np.pi * width**2) ** -1.5 * np.exp(
            -(pairs.data**2) / (2 * width**2)
        )
        if self.axes is not None:
            axis = np.asarray(rotations)[i] @ self.body_axis  # (pairs, 3)
            cos = (axis * self.axes[k]).sum(axis=1)
            value = value * axis_density(cos, self.spread[k])
        density = np.bincount(i, value * self.shares[k], minlength=len(centres))
        return (1 - self.mixing) + self.mixing * self.volume * density

    def weights(self, centres: np.ndarray, rotations: np.ndarray) -> np.ndarray:
        """p_uniform/q of each draw ``(n,)``: 1 for the uniform proposal."""
        return 1.0 / self.ratios(centres, rotations)


def both_ends(centres: np.ndarray, axes: np.ndarray | None):
    """Site poses with both axis signs (either end of a linear guest can bind).

    Without axes (a guest that is not linear) the poses are returned as
    they are.
    """
    if axes is None:
        return centres, None
    return np.concatenate([centres, centres]), np.concatenate([axes, -axes])


def place(guest: np.ndarray, centres: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Guest atoms at each pose: ``(n, len(guest), 3)``, Å.

    ``guest`` holds the positions ``(m, 3)`` relative to its centre of mass.
    """
    return np.einsum("nij,aj->nai", rotations, guest) + centres[:, None, :]
