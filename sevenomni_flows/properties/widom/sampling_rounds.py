"""Widom sampling in rounds until K_H and Q_st are converged.

One :class:`WidomSample` holds the insertions of one guest in one framework.
Each round doubles its model evaluations (the first makes
:data:`FIRST_ROUND`), until at every temperature

- the bootstrap relative error of K_H is at most ``target_error``,
- the bootstrap error of Q_st is at most ``target_qst_error`` kJ/mol,
- the effective insertions (Kish, of the importance × Boltzmann weights)
  reach ``min_effective``,
- and K_H moved by at most twice its error since the latest round with at
  most :data:`STABLE_FRACTION` of the evaluations (rounds double, so that
  is the previous one; a last round cut short by the maximum is judged
  against the one before a doubling; the first round against its own first
  half): a sample that just found a new strong site is not converged,
  whatever its error says,
- and there were two rounds at least (a first round that missed the
  strong sites can meet every target with the wrong value),

or ``max_evaluations`` model evaluations are spent (then it is not
converged, and :attr:`WidomSample.reason` says why).  With ``fixed`` set,
it makes exactly that many insertions in one round and the targets only
judge ``converged``.

The class is independent of the model: a caller draws the insertions
(:class:`~sevenomni_flows.properties.widom.sampling.MixtureProposal`), evaluates
the non-overlapping ones, and hands back energies and weights, so many
samples can share each round's batched model calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .averages import K_B, MIN_EFFECTIVE, WidomAverages, averages

__all__ = ["FIRST_ROUND", "STABLE_FRACTION", "Targets", "WidomSample", "unmet"]

#: Model evaluations in the first round; each later one doubles the total.
FIRST_ROUND = 500

#: K_H must be stable since the round with at most this share of the evaluations.
STABLE_FRACTION = 0.6


@dataclass(frozen=True)
class Targets:
    """When a Widom sample is converged.

    Parameters
    ----------
    error : float
        Relative bootstrap error of K_H (> 0).
    qst_error : float
        Bootstrap error of Q_st, kJ/mol (> 0).
    max_evaluations : int
        Most model evaluations (overlapping insertions cost none).
    min_effective : float
        Fewest effective insertions (Kish).
    fixed : int, optional
        Insert exactly this many times, in one round.
    first : int
        Evaluations of the first round.
    """

    error: float = 0.1
    qst_error: float = 1.0
    max_evaluations: int = 20000
    min_effective: float = MIN_EFFECTIVE
    fixed: int | None = None
    first: int = FIRST_ROUND


def unmet(
    results: list[WidomAverages],
    previous: list[WidomAverages],
    targets: Targets,
) -> list[str]:
    """Why ``results`` are not converged (empty when they are).

    ``previous`` are the results on the first half of the same sample (the
    round before, when rounds double).
    """
    out = []
    for r in results:
        t, k, k_err = r.temperature, r.henry_coefficient, r.henry_coefficient_error
        rel = k_err / k if k > 0 else math.inf
        if not rel <= targets.error:
            out.append(f"K_H error {rel:.0%} > {targets.error:.0%} at {t:g} K")
        q_err = r.heat_of_adsorption_error
        if q_err is None or not q_err <= targets.qst_error:
            shown = "undefined" if q_err is None else f"{q_err:.2f}"
            out.append(f"Q_st error {shown} > {targets.qst_error:g} kJ/mol at {t:g} K")
        if r.effective_insertions < targets.min_effective:
            out.append(
                f"{r.effective_insertions:.1f} effective insertions < "
                f"{targets.min_effective:g} at {t:g} K"
            )
    for r, p in zip(results, previous, strict=True):
        moved = abs(r.henry_coefficient - p.henry_coefficient)
        if moved > 2 * r.henry_coefficient_error:
            out.append(
                f"K_H moved by {moved / r.henry_coefficient:.0%} over the last "
                f"doubling at {r.temperature:g} K (more than twice its error)"
            )
    return out


@dataclass
class WidomSample:
    """The insertions of one guest in one framework, grown in rounds.

    Parameters
    ----------
    temperatures : list of float
        K.
    density : float
        Framework density, kg/m³.
    targets : Targets
        When to stop.
    floor : float
        eV; insertions with ΔE below it are unphysical (zero weight, counted).
    """

    temperatures: list[float]
    density: float
    targets: Targets = field(default_factory=Targets)
    floor: float = -math.inf
    energies: list[np.ndarray] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    evaluations: int = 0
    n_overlapping: int = 0
    n_unphysical: int = 0
    n_failed: int = 0
    history: list[dict] = field(default_factory=list)
    results: list[WidomAverages] = field(default_factory=list)
    rounds: list[tuple[int, list[WidomAverages]]] = field(default_factory=list)
    done: bool = False
    converged: bool = False
    reason: str | None = None

    @property
    def n_insertions(self) -> int:
        """Insertions made (overlapping and failed included)."""
        return sum(len(e) for e in self.energies)

    def wanted(self) -> int:
        """Insertions (fixed count) or evaluations the next round asks for (0: done)."""
        if self.done:
            return 0
        if self.targets.fixed:
            return self.targets.fixed
        room = self.targets.max_evaluations - self.evaluations
        return max(0, min(max(self.targets.first, self.evaluations), room))

    def accept_rate(self) -> float:
        """Share of insertions evaluated so far (not overlapping); 0.5 before any."""
        n = self.n_insertions
        return 0.5 if not n else max((n - self.n_overlapping) / n, 0.01)

    def add(self, energies: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Add one round's insertions; return the mask of those kept in the sample.

        ``energies`` are ΔE, eV, per insertion in the order drawn: ``inf`` for
        an overlap (not evaluated), NaN for a failed evaluation (left out of
        the sample and its denominator).  ΔE below the floor become ``inf``.
        """
        energies = np.array(energies, dtype=float)
        weights = np.asarray(weights, dtype=float)
        over = np.isposinf(energies)
        failed = np.isnan(energies)
        self.evaluations += int((~over).sum())
        self.n_overlapping += int(over.sum())
        self.n_failed += int(failed.sum())
        low = energies < self.floor
        self.n_unphysical += int(low.sum())
        energies[low] = np.inf
        keep = ~failed
        self.energies.append(energies[keep])
        self.weights.append(weights[keep])
        return keep

    def reweight(self, weights: np.ndarray) -> None:
        """Replace the importance weights of every kept insertion (in order)."""
        energies, _ = self.sample()
        weights = np.asarray(weights, dtype=float)
        if weights.shape != energies.shape:
            raise ValueError(f"{len(weights)} weights for {len(energies)} insertions")
        self.weights = [weights]

    def mass(self) -> np.ndarray:
        """Each kept insertion's share of the Boltzmann average, summed over T.

        At each temperature u = w·exp(−βΔE), normalised to 1; zero weight
        (overlaps, excluded) is 0.  Used to find the insertions that carry
        K_H.
        """
        energies, weights = self.sample()
        out = np.zeros(len(energies))
        finite = np.isfinite(energies) & (weights > 0)
        if not finite.any():
            return out
        e = energies[finite]
        for t in self.temperatures:
            u = weights[finite] * np.exp(-(e - e.min()) / (K_B * t))
            out[finite] += u / u.sum()
        return out

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """Every kept ΔE (``inf`` for zero weight) and its importance weight."""
        if not self.energies:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(self.energies), np.concatenate(self.weights)

    def check(self) -> None:
        """Averages after a round, its history entry, and whether to stop."""
        energies, weights = self.sample()
        earlier = [
            results
            for evaluations, results in self.rounds
            if evaluations <= STABLE_FRACTION * self.evaluations
        ]
        half = len(energies) // 2
        previous = (
            earlier[-1]
            if earlier
            else [
                averages(energies[:half], t, self.density, weights[:half], bootstrap=0)
                for t in self.temperatures
            ]
        )
        self.results = [
            averages(energies, t, self.density, weights) for t in self.temperatures
        ]
        self.rounds.append((self.evaluations, self.results))
        self.history.append(
            {
                "evaluations": self.evaluations,
                "insertions": self.n_insertions,
                "henry_coefficient": [r.henry_coefficient for r in self.results],
                "henry_coefficient_error": [
                    r.henry_coefficient_error for r in self.results
                ],
                "heat_of_adsorption": [r.heat_of_adsorption for r in self.results],
                "heat_of_adsorption_error": [
                    r.heat_of_adsorption_error for r in self.results
                ],
                "effective_insertions": [r.effective_insertions for r in self.results],
            }
        )
        why = unmet(self.results, previous, self.targets)
        if len(self.history) < 2 and not self.targets.fixed:
            why.append("one round only (the next one checks it)")
        self.converged = not why
        spent = self.evaluations >= self.targets.max_evaluations
        self.done = self.converged or spent or bool(self.targets.fixed)
        if self.done and why:
            where = (
                f"after a fixed {self.n_insertions} insertions"
                if self.targets.fixed
                else f"at the maximum of {self.evaluations} model evaluations"
            )
            self.reason = f"not converged {where}: " + "; ".join(why)
        else:
            self.reason = None
