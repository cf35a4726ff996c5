"""D3 energies of many placements of a rigid guest in one rigid periodic host.

Widom insertion evaluates E_D3(host + guest) for thousands of guest
placements in a host that never moves. The full sum runs over every pair of
the combined structure within 31.75 Å (about a million for a 160-atom MOF),
although the host's pair distances never change. This module evaluates the
same energy exactly, in three parts:

- host-host: the pair distances, and so the damping factors, are fixed; only
  the coordination numbers change (by the guest's contributions), and with
  them the reference weights ``w``. The energy is the quadratic form
  ``w · M · w`` with ``M[(i,a),(j,b)] = A_ij C6ref(z_i, z_j, a, b)``, ``A_ij``
  the damping factors summed over images, built once;
- host-guest: the pairs within the cutoff of each guest atom (a k-d tree
  over the host's periodic images, built once);
- guest-guest: the guest with its own periodic images.

Two-body terms only (the three-body term is not incremental; use
:func:`~sevenomni_core.dispersion.d3_packed`). Energy only, float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from ase import Atoms
from scipy.spatial import cKDTree
from tad_dftd3.model import weight_references
from tad_dftd3.ncoord import exp_count
from tad_mctc.units import AA2AU

from ..data import neighbor_list
from ._config import D3Config
from ._d3 import DAMPING_KEYS, pair_factor, reference_tables

__all__ = ["RigidHostD3"]

#: Guest placements evaluated at once (bounds the pair arrays' memory).
CHUNK = 128

#: Largest quadratic form (entries, 8 bytes each) a host may have: 1 GiB.
MAX_FORM = 2**27


class RigidHostD3:
    """Exact two-body D3 energies of a rigid guest placed many times in a host.

    Parameters
    ----------
    host : ase.Atoms
        Periodic along all three lattice vectors; it is not modified.
    guest_numbers : sequence of int
        Atomic numbers of the guest, in the order of the positions that
        :meth:`energies` takes.
    config : D3Config
        Damping kind and cutoffs; ``atm`` must be off.
    params : mapping
        Damping parameters (:meth:`D3Config.parameters`).
    device : str or torch.device
        Where to evaluate (in float64).

    Examples
    --------
    >>> from ase.build import bulk
    >>> from sevenomni_core.dispersion import D3Config, evaluate_d3
    >>> host, cfg = bulk("Si", cubic=True), D3Config("d3bj", functional="pbe")
    >>> d3 = RigidHostD3(host, [8], cfg, cfg.parameters(None))
    >>> [full] = evaluate_d3(host + Atoms("O", [[1.3, 1.3, 1.3]]), cfg)
    >>> bool(abs(d3.energies(np.array([[[1.3, 1.3, 1.3]]]))[0] - full.energy[0]) < 1e-9)
    True
    """

    def __init__(
        self,
        host: Atoms,
        guest_numbers: Sequence[int],
        config: D3Config,
        params: Mapping[str, float],
        device: str | torch.device = "cpu",
    ):
        if config.atm:
            raise ValueError(
                "RigidHostD3: the three-body (ATM) term is not incremental; "
                "evaluate it with d3_packed"
            )
        if not np.all(host.pbc) or abs(host.cell.volume) < 1e-6:
            raise ValueError("RigidHostD3: the host must be periodic in 3D")
        self.config = config
        dd = self._dd = {"device": torch.device(device), "dtype": torch.float64}
        self._ref, self._rcov, _, _ = reference_tables(**dd)
        self._p = {
            k: torch.tensor([params[k]], **dd) for k in DAMPING_KEYS[config.damping]
        }
        self.cell = np.array(host.cell.array, dtype=np.float64)
        self._inverse = np.linalg.inv(self.cell)
        frac = host.get_scaled_positions(wrap=True)
        positions = frac @ self.cell
        self.z_host = torch.as_tensor(host.numbers, device=dd["device"])
        self.z_guest = torch.as_tensor(np.asarray(guest_numbers), device=dd["device"])
        if len(self.z_guest) == 0:
            raise ValueError("RigidHostD3: the guest has no atoms")
        self._n_refs = self.references(host, guest_numbers)
        n_host = len(host)
        if not self.fits(host, guest_numbers):
            raise ValueError(
                f"RigidHostD3: a host of {n_host} atoms needs a quadratic form "
                f"over {MAX_FORM} entries; use d3_packed"
            )

        # host-host: coordination numbers and the quadratic form
        i, j, shifts = neighbor_list(
            positions, self.cell, np.ones(3, bool), config.max_cutoff
        )
        i, j = (
            torch.as_tensor(i, device=dd["device"]),
            torch.as_tensor(j, device=dd["device"]),
        )
        vec = (
            positions[j.cpu().numpy()] - positions[i.cpu().numpy()] + shifts @ self.cell
        )
        r = torch.as_tensor(np.linalg.norm(vec, axis=1), **dd) * AA2AU
        self.cn_host = torch.zeros(n_host, **dd)
        self._count(self.cn_host, i, r, self.z_host[i], self.z_host[j])
        m = r <= config.cutoff * AA2AU
        factor = self._factor(r[m], self.z_host[i[m]], self.z_host[j[m]])
        damping = torch.zeros(n_host * n_host, **dd).index_add(
            0, i[m] * n_host + j[m], factor
        )
        c6 = self._c6ref(self.z_host, self.z_host)  # (H, H, R, R)
        nr = self._n_refs
        self._form = (
            (damping.reshape(n_host, n_host, 1, 1) * c6)
            .permute(0, 2, 1, 3)
            .reshape(n_host * nr, n_host * nr)
        )
        self._c6_gh = self._c6ref(self.z_guest, self.z_host)
        self._c6_gg = self._c6ref(self.z_guest, self.z_guest)

        # the host's images around the cell, for the host-guest pairs
        self._shifts = self._lattice_shifts(config.max_cutoff)
        cloud = (frac[None, :, :] + self._shifts[:, None, :]).reshape(-1, 3)
        self._cloud = cloud @ self.cell
        self._tree = cKDTree(self._cloud)

    @staticmethod
    def references(host: Atoms, guest_numbers: Sequence[int]) -> int:
        """Reference systems per atom that the form spans (the most any
        element of host and guest has)."""
        ref, *_ = reference_tables(torch.device("cpu"), torch.float64)
        present = torch.as_tensor(np.unique([*host.numbers, *guest_numbers]))
        return int((ref.cn[present] >= 0).sum(-1).max())

    @classmethod
    def fits(cls, host: Atoms, guest_numbers: Sequence[int]) -> bool:
        """Whether the host's quadratic form stays within :data:`MAX_FORM`."""
        return (len(host) * cls.references(host, guest_numbers)) ** 2 <= MAX_FORM

    # ------------------------------------------------------------ helpers

    def _c6ref(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        nr = self._n_refs
        return self._ref.c6[za.unsqueeze(-1), zb.unsqueeze(-2)][..., :nr, :nr]

    def _factor(self, r, zi, zj) -> torch.Tensor:
        s = torch.zeros(len(r), dtype=torch.long, device=r.device)
        return pair_factor(self.config, self._p, s, r, zi, zj)

    def _count(self, cn, index, r, zi, zj) -> None:
        """Add the counting function of pairs within the CN cutoff to ``cn``."""
        m = r <= self.config.cn_cutoff * AA2AU
        cn.index_add_(
            0, index[m], exp_count(r[m], self._rcov[zi[m]] + self._rcov[zj[m]])
        )

    def _lattice_shifts(self, cutoff: float) -> np.ndarray:
        """Integer lattice shifts whose images reach ``cutoff`` of any point
        of the cell (fractional shifts, float)."""
        spacing = 1.0 / np.linalg.norm(self._inverse, axis=0)  # plane spacings
        reach = [math.ceil(cutoff / d) + 1 for d in spacing]
        grid = np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij")
        return np.stack([g.ravel() for g in grid], axis=1).astype(np.float64)

    def _weights(self, z, cn) -> torch.Tensor:
        return weight_references(z, cn, self._ref)[..., : self._n_refs]

    # ------------------------------------------------------------ energies

    def energies(self, positions: np.ndarray) -> np.ndarray:
        """E_D3(host + guest), eV, for each placement.

        Parameters
        ----------
        positions : numpy.ndarray
            ``(n, len(guest), 3)`` Å, the guest's atoms in each placement.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` eV, the two-body D3 energy of the combined structure
            (host, guest and all their periodic images), as
            :func:`~sevenomni_core.dispersion.d3_packed` gives it.
        """
        positions = np.asarray(positions, dtype=np.float64)
        n_guest = len(self.z_guest)
        if positions.ndim != 3 or positions.shape[1:] != (n_guest, 3):
            raise ValueError(
                f"RigidHostD3.energies: positions must have shape (n, {n_guest}, 3), "
                f"got {positions.shape}"
            )
        out = [
            self._chunk(positions[k : k + CHUNK])
            for k in range(0, len(positions), CHUNK)
        ]
        return np.concatenate(out) if out else np.zeros(0)

    def _chunk(self, positions: np.ndarray) -> np.ndarray:
        dd, cfg = self._dd, self.config
        n, n_guest, _ = positions.shape
        n_host = len(self.z_host)
        device = dd["device"]

        # host-guest pairs: each guest atom against the host's images
        points = positions.reshape(-1, 3)
        frac = points @ self._inverse
        wrapped = (frac - np.floor(frac)) @ self.cell
        found = self._tree.query_ball_point(
            wrapped, r=cfg.max_cutoff, return_sorted=False
        )
        sizes = np.fromiter((len(f) for f in found), dtype=np.int64, count=len(found))
        image = np.fromiter(
            (k for f in found for k in f), dtype=np.int64, count=sizes.sum()
        )
        owner = np.repeat(np.arange(len(points)), sizes)
        r = np.linalg.norm(self._cloud[image] - wrapped[owner], axis=1)
        r = torch.as_tensor(r, **dd) * AA2AU
        q = torch.as_tensor(owner, device=device)  # placement * n_guest + guest atom
        h = torch.as_tensor(image % n_host, device=device)
        place = torch.div(q, n_guest, rounding_mode="floor")
        zg, zh = self.z_guest[q % n_guest], self.z_host[h]

        # guest-guest pairs: the guest with its own images (not itself)
        delta = positions[:, None, :, :] - positions[:, :, None, :]  # (n, g1, g2, 3)
        dfrac = delta @ self._inverse
        dfrac -= np.round(dfrac)
        vec = (dfrac[..., None, :] + self._shifts) @ self.cell  # (n, g1, g2, S, 3)
        rgg = np.linalg.norm(vec, axis=-1)
        same = np.eye(n_guest, dtype=bool)[None, :, :, None] & (rgg < 1e-8)
        keep = (rgg <= cfg.max_cutoff) & ~same
        pn, p1, p2, _ = np.nonzero(keep)
        rgg = torch.as_tensor(rgg[keep], **dd) * AA2AU
        g1 = torch.as_tensor(pn * n_guest + p1, device=device)
        g2 = torch.as_tensor(pn * n_guest + p2, device=device)
        z1, z2 = self.z_guest[g1 % n_guest], self.z_guest[g2 % n_guest]

        # coordination numbers and reference weights
        cn_host = self.cn_host.repeat(n)
        cn_guest = torch.zeros(n * n_guest, **dd)
        self._count(cn_host, place * n_host + h, r, zh, zg)
        self._count(cn_guest, q, r, zg, zh)
        self._count(cn_guest, g1, rgg, z1, z2)
        w_host = self._weights(self.z_host.repeat(n), cn_host).reshape(n, -1)
        w_guest = self._weights(self.z_guest.repeat(n), cn_guest)
        w_guest = w_guest.reshape(n, n_guest, -1)

        # host-host, host-guest (both orders) and guest-guest energies
        energy = ((w_host @ self._form) * w_host).sum(-1)
        m = r <= cfg.cutoff * AA2AU
        damping = torch.zeros(n * n_guest * n_host, **dd).index_add(
            0, q[m] * n_host + h[m], self._factor(r[m], zg[m], zh[m])
        )
        w_h = w_host.reshape(n, n_host, -1)
        c6 = torch.einsum("nga,ghab,nhb->ngh", w_guest, self._c6_gh, w_h)
        energy = energy + 2.0 * (damping.reshape(n, n_guest, n_host) * c6).sum((1, 2))
        m = rgg <= cfg.cutoff * AA2AU
        damping = torch.zeros(n * n_guest * n_guest, **dd).index_add(
            0, g1[m] * n_guest + g2[m] % n_guest, self._factor(rgg[m], z1[m], z2[m])
        )
        c6 = torch.einsum("nga,gkab,nkb->ngk", w_guest, self._c6_gg, w_guest)
        energy = energy + (damping.reshape(n, n_guest, n_guest) * c6).sum((1, 2))
        return energy.cpu().numpy()
