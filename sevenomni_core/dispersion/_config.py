"""Settings of the D3 dispersion term, and which functional each task is.

D3's damping parameters belong to the density functional of the data a model
was trained on.  :data:`TASK_FUNCTIONALS` maps each known task to it;
:data:`TASKS_WITH_DISPERSION` lists the tasks whose data already contain a
dispersion correction (or a nonlocal van der Waals functional), to which an
added D3 would count dispersion twice.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from tad_dftd3 import defaults as _tad_defaults
from tad_dftd3.__version__ import __version__ as _tad_version
from tad_dftd3.param import get_functional_params
from tad_mctc.units import AU2AA

from ..model.potential import Potential
from ..options import DAMPINGS

__all__ = [
    "DAMPINGS",
    "SINGLE_TASK_FUNCTIONAL",
    "TASKS_WITH_DISPERSION",
    "TASK_FUNCTIONALS",
    "D3Config",
    "functional_for_task",
    "resolve_dispersion",
    "with_dispersion",
]

#: Functional of the training data of each task (keys in lower case; task
#: names are matched case-insensitively).  From the SevenNet-MF and
#: SevenNet-Omni papers (see the project's domain notes).
TASK_FUNCTIONALS: dict[str, str] = {
    # PBE(+U)
    "mpa": "pbe",
    "omat24": "pbe",
    "oc22": "pbe",
    "matpes_pbe": "pbe",
    "pbe": "pbe",  # 7net-mf-0
    # RPBE
    "oc20": "rpbe",
    # r2SCAN
    "mp_r2scan": "r2scan",
    "matpes_r2scan": "r2scan",
    "r2scan": "r2scan",  # 7net-mf-0
    # others without dispersion in the data
    "qcml": "pbe0",
    "pet_mad": "pbesol",
}

#: Functional of single-task models (7net-0, 7net-l3i5, 7net-omat: trained
#: on PBE(+U) data: MPtrj, OMat24).
SINGLE_TASK_FUNCTIONAL = "pbe"

#: Tasks whose data already contain dispersion: adding D3 counts it twice.
TASKS_WITH_DISPERSION: dict[str, str] = {
    "odac23": "PBE-D3 (ODAC23 labels include D3 dispersion)",
    "spice": "ωB97M-D3(BJ) (SPICE labels include D3(BJ) dispersion)",
    "omol25_low": "ωB97M-V (the VV10 nonlocal functional includes dispersion)",
    "omol25_high": "ωB97M-V (the VV10 nonlocal functional includes dispersion)",
}

_BOHR = AU2AA  # Å per bohr


def functional_for_task(task: str | None, force: bool = False) -> str:
    """The functional (D3 parameter set) of ``task``'s training data.

    Parameters
    ----------
    task : str or None
        A task name (case-insensitive); None for a single-task model.
    force : bool
        Return the task's functional even when its data already contain
        dispersion (then the functional must be known or given).

    Raises
    ------
    ValueError
        For a task whose data already contain dispersion (unless ``force``),
        or a task whose functional is not known here.

    Examples
    --------
    >>> functional_for_task("mpa"), functional_for_task("R2SCAN")
    ('pbe', 'r2scan')
    >>> functional_for_task("oc20")
    'rpbe'
    """
    if task is None:
        return SINGLE_TASK_FUNCTIONAL
    key = task.lower()
    if key in TASKS_WITH_DISPERSION and not force:
        raise ValueError(
            f"task {task!r} was trained on {TASKS_WITH_DISPERSION[key]}: adding "
            "D3 would count dispersion twice.  Use a task without dispersion "
            "(e.g. 'mpa'), or pass force=True (and functional=...) to add it "
            "anyway"
        )
    if key not in TASK_FUNCTIONALS:
        raise ValueError(
            f"the functional of task {task!r} is not known; pass functional=... "
            "(e.g. 'pbe') to choose the D3 parameters. Known tasks: "
            f"{', '.join(sorted(TASK_FUNCTIONALS))}"
        )
    return TASK_FUNCTIONALS[key]


@dataclass(frozen=True)
class D3Config:
    """Settings of a DFT-D3 term added to a model's energy, forces and stress.

    Cutoffs are in Å; their defaults are simple-dftd3's (and tad-dftd3's):
    60 bohr for the two-body sum, 40 bohr for the coordination number and
    for the three-body term.

    Attributes
    ----------
    damping : str
        ``"d3bj"`` (rational, Becke-Johnson) or ``"d3zero"`` (zero damping).
    functional : str or None
        Functional whose damping parameters are used (any name of
        simple-dftd3's table, e.g. ``"pbe"``, ``"rpbe"``, ``"r2scan"``).
        None (default) takes it from the task (:data:`TASK_FUNCTIONALS`).
    cutoff : float
        Two-body cutoff, Å (default 60 bohr = 31.75 Å).
    cn_cutoff : float
        Coordination-number cutoff, Å (default 40 bohr = 21.17 Å).
    atm : bool
        Add the three-body Axilrod-Teller-Muto term (default False, as in
        VASP's ``IVDW = 11/12``).  Its cost grows with the square of the
        neighbours within ``atm_cutoff``: seconds for small cells, much more
        for large porous ones.
    atm_cutoff : float
        Three-body cutoff, Å (default 40 bohr = 21.17 Å).
    force : bool
        Allow D3 on a task whose data already contain dispersion.
    params : mapping or None
        Explicit damping parameters (``s6, s8, a1, a2`` for BJ;
        ``s6, s8, rs6, rs8, alp`` for zero damping) that replace the table's.

    Examples
    --------
    >>> cfg = D3Config("d3bj")
    >>> round(cfg.cutoff, 2), cfg.atm
    (31.75, False)
    >>> cfg.parameters("mpa")["a1"]
    0.4289
    """

    damping: str = "d3bj"
    functional: str | None = None
    cutoff: float = _tad_defaults.D3_DISP2_CUTOFF * _BOHR
    cn_cutoff: float = _tad_defaults.D3_CN_CUTOFF * _BOHR
    atm: bool = False
    atm_cutoff: float = _tad_defaults.D3_DISP3_CUTOFF * _BOHR
    force: bool = False
    params: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        damping = str(self.damping).lower()
        if damping not in DAMPINGS:
            raise ValueError(
                f"unknown dispersion damping {self.damping!r}; "
                f"use one of {list(DAMPINGS)}"
            )
        object.__setattr__(self, "damping", damping)
        for name in ("cutoff", "cn_cutoff", "atm_cutoff"):
            value = float(getattr(self, name))
            if not value > 0:
                raise ValueError(f"{name} must be positive (Å), got {value}")
            object.__setattr__(self, name, value)
        if self.params is not None:
            object.__setattr__(
                self, "params", {k: float(v) for k, v in self.params.items()}
            )

    @property
    def max_cutoff(self) -> float:
        """The largest cutoff in use, Å: the reach of the neighbour list."""
        cuts = [self.cutoff, self.cn_cutoff]
        if self.atm:
            cuts.append(self.atm_cutoff)
        return max(cuts)

    def functional_for(self, task: str | None) -> str:
        """The functional used for ``task`` (the override, else the task's).

        Raises
        ------
        ValueError
            See :func:`functional_for_task`.
        """
        if self.functional is None:
            return functional_for_task(task, self.force)
        if not self.force and task is not None:
            if task.lower() in TASKS_WITH_DISPERSION:
                functional_for_task(task)  # raises the double-counting error
        return self.functional

    def parameters(self, task: str | None = None) -> dict[str, float]:
        """Damping parameters for ``task``: ``s6, s8, s9`` and ``a1, a2`` (BJ)
        or ``rs6, rs8, alp`` (zero damping); lengths in bohr, as in D3.

        ``s9`` is 1 with ``atm`` and 0 without.

        Raises
        ------
        ValueError
            For a task refused by :meth:`functional_for`, or a functional
            without parameters for this damping.
        """
        out = dict(_table_parameters(self.functional_for(task), self.damping))
        out.update(self.params or {})
        out["s9"] = 1.0 if self.atm else 0.0
        out.setdefault("s6", 1.0)
        if self.damping == "d3zero":
            out.setdefault("rs8", 1.0)
            out.setdefault("alp", 14.0)
        return out

    def describe(self, task: str | None = None) -> dict[str, Any]:
        """A record of the settings for ``task`` (for ``calc.parameters``)."""
        return {
            "method": "DFT-D3(BJ)" if self.damping == "d3bj" else "DFT-D3(0)",
            "damping": self.damping,
            "functional": self.functional_for(task),
            "parameters": self.parameters(task),
            "cutoff": self.cutoff,
            "cn_cutoff": self.cn_cutoff,
            "atm": self.atm,
            "atm_cutoff": self.atm_cutoff if self.atm else None,
            "units": "cutoffs in Å; damping radii a2 in bohr",
            "library": _library(),
        }


@functools.cache
def _table_parameters(functional: str, damping: str) -> dict[str, float]:
    """simple-dftd3's damping parameters of ``functional`` (read once)."""
    try:
        found = get_functional_params(
            functional, damping=DAMPINGS[damping], dtype=torch.float64
        )
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"no D3 {damping} parameters for functional {functional!r} "
            f"in simple-dftd3's table ({err}); pass params=... or another "
            "functional"
        ) from None
    return {k: float(v) for k, v in found.items()}


def _library() -> str:
    """The libraries that evaluate D3 (simple-dftd3 on the CPU if installed)."""
    try:
        simple = f"simple-dftd3 {version('dftd3')} on the CPU, "
    except PackageNotFoundError:
        simple = ""
    return f"{simple}tad-dftd3 {_tad_version}"


def resolve_dispersion(
    dispersion: str | D3Config | None, functional: str | None = None, **settings
) -> D3Config | None:
    """A :class:`D3Config` from a damping name, a config or None.

    ``functional`` and ``settings`` (fields of :class:`D3Config`) apply to a
    name, or replace those fields of a config.

    Examples
    --------
    >>> resolve_dispersion("d3bj", functional="pbe").functional
    'pbe'
    >>> resolve_dispersion(None) is None
    True
    """
    if dispersion is None:
        if functional is not None or settings:
            raise ValueError("functional/settings given without a dispersion")
        return None
    if functional is not None:
        settings["functional"] = functional
    if isinstance(dispersion, D3Config):
        return dataclasses.replace(dispersion, **settings) if settings else dispersion
    if isinstance(dispersion, str):
        return D3Config(dispersion, **settings)
    raise TypeError(
        "dispersion must be None, a damping name "
        f"({', '.join(DAMPINGS)}) or a D3Config, got {type(dispersion).__name__}"
    )


def with_dispersion(
    potential: Potential,
    dispersion: str | D3Config | None = "d3bj",
    functional: str | None = None,
    **settings,
) -> Potential:
    """A copy of ``potential`` whose results include D3 dispersion.

    The copy shares the network (no weights are copied) and the cached model
    stays as it was.  ``predict``, ``relax`` and the calculator add the D3
    energy, forces and stress whenever ``potential.dispersion`` is set.

    Parameters
    ----------
    potential : Potential
        A loaded model.
    dispersion : str, D3Config or None
        ``"d3bj"``, ``"d3zero"``, a config, or None to remove dispersion.
    functional : str, optional
        Overrides the functional of the task (:data:`TASK_FUNCTIONALS`).
    **settings
        Other fields of :class:`D3Config` (``atm``, ``cutoff``, ...).

    Raises
    ------
    ValueError
        For an unknown damping, or when the model's default task already has
        dispersion in its data (unless ``force=True``).

    Examples
    --------
    >>> pot = with_dispersion(load_model("7net-0"), "d3bj")  # doctest: +SKIP
    >>> pot.dispersion.damping  # doctest: +SKIP
    'd3bj'
    """
    config = resolve_dispersion(dispersion, functional, **settings)
    if config is not None and potential.default_task is not None:
        default = potential.default_task.lower()
        if default not in TASKS_WITH_DISPERSION or config.force:
            config.parameters(potential.default_task)  # fail early
    return dataclasses.replace(potential, dispersion=config)
