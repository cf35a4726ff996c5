"""sevenomni_core: SevenNet-family equivariant potentials on torch and e3nn.

>>> from sevenomni_core import SevenOmniCalculator, load_model, available_models

The names are imported on first use, so that ``import sevenomni_core`` (and
any light module of it, such as :mod:`sevenomni_core.options`) does not
import torch.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and the API docs; imported on first use
    from .calculator import SevenOmniCalculator
    from .data import InvalidStructureError
    from .dispersion import D3Config, with_dispersion
    from .model import ModelNotFoundError, available_models, load_model

__version__ = "0.1.0"

__all__ = [
    "D3Config",
    "InvalidStructureError",
    "ModelNotFoundError",
    "SevenOmniCalculator",
    "available_models",
    "load_model",
    "with_dispersion",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "D3Config": ".dispersion",
        "InvalidStructureError": ".data",
        "ModelNotFoundError": ".model",
        "SevenOmniCalculator": ".calculator",
        "available_models": ".model",
        "load_model": ".model",
        "with_dispersion": ".dispersion",
    },
    __all__,
)
__all__ += ["__version__"]
