"""SevenNet models: configuration, network, checkpoints and the registry.

The names are imported on first use: the registry
(:mod:`sevenomni_core.model.registry`) is read without importing torch.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and the API docs; imported on first use
    from .checkpoint import build_model, save_checkpoint
    from .config import ModelConfig, UnsupportedModelError
    from .header import CheckpointError, read_checkpoint
    from .network import SevenNet
    from .potential import Potential, load_model
    from .registry import MODELS, ModelNotFoundError, available_models

__all__ = [
    "MODELS",
    "CheckpointError",
    "ModelConfig",
    "ModelNotFoundError",
    "Potential",
    "SevenNet",
    "UnsupportedModelError",
    "available_models",
    "build_model",
    "load_model",
    "read_checkpoint",
    "save_checkpoint",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "MODELS": ".registry",
        "CheckpointError": ".header",
        "ModelConfig": ".config",
        "ModelNotFoundError": ".registry",
        "Potential": ".potential",
        "SevenNet": ".network",
        "UnsupportedModelError": ".config",
        "available_models": ".registry",
        "build_model": ".checkpoint",
        "load_model": ".potential",
        "read_checkpoint": ".header",
        "save_checkpoint": ".checkpoint",
    },
    __all__,
)
