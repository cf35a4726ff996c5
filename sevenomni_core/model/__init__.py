"""SevenNet models: configuration, network, checkpoints and the registry.

The names are imported on first use: the registry
(:mod:`sevenomni_core.model.registry`) is read without importing torch.
"""

from .._lazy import lazy_exports

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
        "CheckpointError": ".checkpoint",
        "ModelConfig": ".config",
        "ModelNotFoundError": ".registry",
        "Potential": ".potential",
        "SevenNet": ".network",
        "UnsupportedModelError": ".config",
        "available_models": ".registry",
        "build_model": ".checkpoint",
        "load_model": ".potential",
        "read_checkpoint": ".checkpoint",
        "save_checkpoint": ".checkpoint",
    },
    __all__,
)
