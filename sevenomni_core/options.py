"""The names and defaults of the core's options, importable without torch.

Settings layers (the Makers of ``sevenomni_flows``, the spec, the command
line) validate choices and show defaults before any model is loaded; this
module gives them both without importing torch, e3nn or tad-dftd3, so that
``sevenomni --help`` or a query starts in a fraction of a second.  The modules
that use a choice import it from here.

>>> default("relax", "fmax")
0.05
>>> "float64" in DTYPES
True
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BACKENDS",
    "BAROSTATS",
    "DAMPINGS",
    "DTYPES",
    "ENGINES",
    "ENSEMBLES",
    "OPTIMIZERS",
    "default",
]

#: The precisions a model runs in.
DTYPES: Final[tuple[str, ...]] = ("float32", "float64")

#: Kernel backends: ``"e3nn"`` (this package's kernels on e3nn's weight layout,
#: the default) and ``"cueq"`` (NVIDIA cuEquivariance, optional).
BACKENDS: Final[tuple[str, ...]] = ("e3nn", "cueq")

#: Damping names accepted here, and the name of each in the parameter table
#: of tad-dftd3 (the table of simple-dftd3).
DAMPINGS: Final[dict[str, str]] = {"d3bj": "bj", "d3zero": "zero"}

#: The batched optimisers by name (see :mod:`sevenomni_core.batch.optimizers`).
OPTIMIZERS: Final[tuple[str, ...]] = ("fire", "lbfgs", "bfgs")

#: Molecular-dynamics ensembles.
ENSEMBLES: Final[tuple[str, ...]] = ("nve", "nvt", "npt")
#: NPT barostats: stochastic cell rescaling, Berendsen isotropic and full-cell.
BAROSTATS: Final[tuple[str, ...]] = ("crescale", "isotropic", "full")

#: The engine functions whose defaults :func:`default` reads: each is the
#: function of that name in ``sevenomni_core/batch/<name>.py``.
ENGINES: Final[tuple[str, ...]] = ("relax", "md", "neb")


def default(engine: str, argument: str) -> Any:
    """The default of ``argument`` of an engine function (``relax``, ``md``,
    ``neb``), read from its signature in the source without importing it.

    Makers take their defaults from here, so that a setting's default is
    written once, in the engine's signature, and a Maker's module does not
    import torch.

    Raises
    ------
    ValueError
        For an unknown engine, an argument it lacks or has no default for,
        or a default that is not a literal.
    """
    defaults = _signature_defaults(engine)
    if argument not in defaults:
        raise ValueError(f"{engine}() has no default for {argument!r}")
    node = defaults[argument]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"{engine}()'s default for {argument!r} is not a literal: "
            f"{ast.unparse(node)}"
        ) from None


@cache
def _signature_defaults(engine: str) -> dict[str, ast.expr]:
    """Argument name -> default expression of ``engine``'s signature."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines: {ENGINES}")
    path = Path(__file__).parent / "batch" / f"{engine}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    func = next(
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == engine
    )
    args = func.args
    positional = args.posonlyargs + args.args
    names = [a.arg for a in positional][::-1]
    out = dict(zip(names, args.defaults[::-1], strict=False))
    out.update(
        (a.arg, d)
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
        if d is not None
    )
    return out
