"""Widom insertion: Henry coefficients and heats of adsorption in MOFs.

:mod:`.maker` (the Maker), :mod:`.averages` (Boltzmann averages),
:mod:`.sampling` (biased proposals, exact weights), :mod:`.prescan`
(model-free sites), :mod:`.sampling_rounds` (rounds to convergence),
:mod:`.adaptation` (sites learned per round) and :mod:`.insertions`
(batched model evaluation of the insertions).
"""

from .maker import WidomMaker

__all__ = ["WidomMaker"]
