"""DFT-D3 dispersion as an optional term of a model's energy, forces and stress.

Most tasks are trained on DFT without a dispersion correction; physisorption
(in MOFs, on surfaces) needs one.  Attach D3 to a loaded model and every
evaluation (``predict``, ``relax``, the calculator) includes it:

>>> from sevenomni_core import load_model
>>> from sevenomni_core.dispersion import with_dispersion
>>> pot = with_dispersion(load_model("7net-0"), "d3bj")  # doctest: +SKIP

The D3 model comes from tad-dftd3; see :mod:`._d3` for what is done here.
On the CPU, simple-dftd3 (the ``dftd3`` package) evaluates it with the same
parameters and cutoffs (:func:`d3_backend`).
"""

from ._config import (
    DAMPINGS,
    SINGLE_TASK_FUNCTIONAL,
    TASK_FUNCTIONALS,
    TASKS_WITH_DISPERSION,
    D3Config,
    functional_for_task,
    resolve_dispersion,
    with_dispersion,
)
from ._d3 import (
    BACKENDS,
    PBC,
    D3Result,
    d3_backend,
    d3_graphs,
    d3_packed,
    evaluate_d3,
)
from .rigid_host import RigidHostD3

__all__ = [
    "BACKENDS",
    "DAMPINGS",
    "PBC",
    "SINGLE_TASK_FUNCTIONAL",
    "TASKS_WITH_DISPERSION",
    "TASK_FUNCTIONALS",
    "D3Config",
    "D3Result",
    "RigidHostD3",
    "d3_backend",
    "d3_graphs",
    "d3_packed",
    "evaluate_d3",
    "functional_for_task",
    "resolve_dispersion",
    "with_dispersion",
]
