"""Reading checkpoint files without building a network (nor importing e3nn).

``sevenomni models`` lists each checkpoint's tasks; the config that names
them sits in the pickle of torch's zip format beside the weights.  Reading it
with an unpickler that leaves torch's objects (tensors, storages) out costs
milliseconds, where importing torch costs seconds (:func:`read_config`; a
file in torch's legacy format is read with torch).  Planning a run needs the
file's hash and its config, not the network (:func:`checkpoint_config`).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

from .config import ModelConfig

__all__ = [
    "CheckpointError",
    "checkpoint_config",
    "file_sha256",
    "read_checkpoint",
    "read_config",
]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not describe a model."""


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint dictionary on the CPU.

    Raises
    ------
    CheckpointError
        If the file is missing, is not a torch file, or lacks a config or a
        model state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds here
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint: {err}"
        ) from err
    if (
        not isinstance(ckpt, dict)
        or "config" not in ckpt
        or "model_state_dict" not in ckpt
    ):
        raise CheckpointError(
            f"{path} is not a SevenNet checkpoint "
            "(needs 'config' and 'model_state_dict')"
        )
    return ckpt


def checkpoint_config(ckpt: dict[str, Any], source: str = "checkpoint") -> ModelConfig:
    """The architecture of a checkpoint dictionary (no network is built)."""
    try:
        return ModelConfig.from_sevenn(ckpt["config"])
    except KeyError as err:
        raise CheckpointError(f"{source}: config lacks the key {err}") from err


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The ``config`` dictionary of a SevenNet checkpoint.

    Tensors inside it (none in released checkpoints' architecture keys)
    read as None.

    Raises
    ------
    CheckpointError
        As :func:`~sevenomni_core.model.checkpoint.read_checkpoint`: a missing
        file, an unreadable one, or one without a config or a model state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    ckpt = _without_torch(path)
    if ckpt is None:  # torch's legacy format, or not a zip at all
        return read_checkpoint(path)["config"]
    if (
        not isinstance(ckpt, dict)
        or "config" not in ckpt
        or "model_state_dict" not in ckpt
    ):
        raise CheckpointError(
            f"{path} is not a SevenNet checkpoint "
            "(needs 'config' and 'model_state_dict')"
        )
    return ckpt["config"]


def _without_torch(path: Path) -> Any:
    """The unpickled checkpoint with torch's objects as None; None when the
    file is not in torch's zip format."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(
                (n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"),
                None,
            )
            if name is None:
                return None
            return _TorchLeftOut(io.BytesIO(archive.read(name))).load()
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint: {err}"
        ) from err


def _left_out(*args: Any, **kwargs: Any) -> None:
    return None


class _TorchLeftOut(pickle.Unpickler):
    """Unpickles everything but torch's objects, which become None."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" or module.startswith("torch."):
            return _left_out
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> None:  # a tensor's storage
        return None
