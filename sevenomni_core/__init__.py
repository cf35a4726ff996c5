"""sevenomni_core: SevenNet-family equivariant potentials on torch and e3nn.

>>> from sevenomni_core import SevenOmniCalculator, load_model, available_models
"""

__version__ = "0.1.0"

from .calculator import SevenOmniCalculator
from .data import InvalidStructureError
from .dispersion import D3Config, with_dispersion
from .model import ModelNotFoundError, available_models, load_model

__all__ = [
    "D3Config",
    "InvalidStructureError",
    "ModelNotFoundError",
    "SevenOmniCalculator",
    "__version__",
    "available_models",
    "load_model",
    "with_dispersion",
]
