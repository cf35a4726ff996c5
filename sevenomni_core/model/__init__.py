"""SevenNet models: configuration, network, checkpoints and the registry."""

from .checkpoint import CheckpointError, build_model, read_checkpoint, save_checkpoint
from .config import ModelConfig, UnsupportedModelError
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
