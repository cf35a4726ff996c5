"""What an MD run says about a material: order kept, displacements, diffusion.

Plain functions on the sampled frames of
:class:`~sevenomni_core.batch.MDResult`, which tests call without jobflow.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

__all__ = [
    "CRYSTALLINE_SIMILARITY",
    "DIFFUSIVE_MSD",
    "diffusion_coefficient",
    "max_displacement",
    "mean_square_displacement",
    "rdf",
    "rdf_similarity",
]

#: Correlation of the RDFs (last quarter of the run vs the input structure)
#: at or above which a structure counts as having kept its order.  With the
#: 0.25 Å smearing, fcc Cu rattled by 0.2 Å per component (about its
#: melting point) still scores 0.94, a dense random liquid 0.67.
CRYSTALLINE_SIMILARITY = 0.8

#: Mean square displacement (Å²) at the end of the run above which atoms
#: have left their sites and a diffusion coefficient means something.
DIFFUSIVE_MSD = 4.0

#: Å²/fs in cm²/s.
A2_PER_FS = 0.1


def rdf(atoms: Atoms, r_max: float = 6.0, width: float = 0.25, n: int = 120):
    """Gaussian-smeared radial distribution of ``atoms`` (any cell size).

    Returns the radii (Å) and g(r) up to a constant (all pairs, all
    periodic images, via ASE's neighbour list).
    """
    r = np.linspace(0.5, r_max, n)
    d = neighbor_list("d", atoms, r_max + 3 * width)
    if len(d) == 0:
        return r, np.zeros_like(r)
    g = np.exp(-0.5 * ((r[:, None] - d[None, :]) / width) ** 2).sum(axis=1)
    return r, g / (r**2 * len(atoms))


def rdf_similarity(early: list[Atoms], late: list[Atoms]) -> float:
    """Correlation (Pearson) of the mean RDFs of two sets of frames (1: same)."""
    a = np.mean([rdf(x)[1] for x in early], axis=0)
    b = np.mean([rdf(x)[1] for x in late], axis=0)
    a, b = a - a.mean(), b - b.mean()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else 0.0


def mean_square_displacement(positions: np.ndarray, free: np.ndarray) -> np.ndarray:
    """MSD (Å²) of the free atoms per sample, centre-of-mass drift removed.

    ``positions`` is ``(samples, N, 3)``, unwrapped.
    """
    d = positions[:, free] - positions[0, free]
    d = d - d.mean(axis=1, keepdims=True)
    return (d**2).sum(axis=2).mean(axis=1)


def max_displacement(positions: np.ndarray) -> float:
    """Largest distance (Å) an atom ended from where it started."""
    return float(np.linalg.norm(positions[-1] - positions[0], axis=1).max())


def diffusion_coefficient(time_fs: np.ndarray, msd: np.ndarray) -> float | None:
    """D (cm²/s) from the slope of the MSD over the second half, by Einstein's
    relation MSD = 6 D t; None unless the atoms left their sites (final MSD
    above :data:`DIFFUSIVE_MSD`), as a vibrating solid has no D."""
    if len(msd) < 4 or msd[-1] < DIFFUSIVE_MSD:
        return None
    half = len(msd) // 2
    slope = np.polyfit(time_fs[half:], msd[half:], 1)[0]
    return float(max(slope, 0.0) / 6.0 * A2_PER_FS)
