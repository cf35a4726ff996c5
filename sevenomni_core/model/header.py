"""A checkpoint's config, read without torch.

``sevenomni models`` lists each checkpoint's tasks; the config that names
them sits in the pickle of torch's zip format beside the weights.  Reading it
with an unpickler that leaves torch's objects (tensors, storages) out costs
milliseconds, where importing torch costs seconds.  A file in torch's legacy
format is read with torch.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "read_config"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not describe a model."""


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
        from .checkpoint import read_checkpoint

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
