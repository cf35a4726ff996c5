"""A loaded model: the network plus its name, file, hash, tasks and device."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import build_model, file_sha256, read_checkpoint
from .network import SevenNet
from .registry import MODELS, available_models, resolve_checkpoint

if TYPE_CHECKING:  # the dispersion package builds on this module
    from ..dispersion import D3Config

__all__ = ["Potential", "load_model", "resolve_device", "resolve_dtype"]

log = logging.getLogger("sevenomni")

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} was requested but CUDA is not available")
    return device


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"`` or ``"float64"`` (or the torch dtype)."""
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype {dtype} is not supported (float32, float64)")
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(
            f"dtype {dtype!r} is not supported; use one of {list(_DTYPES)}"
        )
    return _DTYPES[dtype]


@dataclass
class Potential:
    """A SevenNet model ready to evaluate.

    Attributes
    ----------
    name : str
        Registry name (or the checkpoint's stem for a path).
    path : pathlib.Path
        Checkpoint file.
    sha256 : str
        SHA-256 of the checkpoint file.
    network : SevenNet
        The torch module, in eval mode, on :attr:`device` in :attr:`dtype`.
    default_task : str or None
        Task used when none is given; None for single-task models.
    dispersion : D3Config or None
        A D3 term added to every result (see
        :func:`sevenomni_core.dispersion.with_dispersion`); None for none.
    """

    name: str
    path: Path
    sha256: str
    network: SevenNet
    default_task: str | None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    dispersion: D3Config | None = None

    @property
    def tasks(self) -> list[str]:
        """The model's tasks (DFT protocols); empty for a single-task model."""
        return self.network.tasks

    @property
    def cutoff(self) -> float:
        """Neighbour cutoff in Å."""
        return self.network.cutoff

    def resolve_task(self, task: str | None) -> tuple[str | None, int]:
        """The canonical task name and its index.

        ``None`` gives the default task.  Names are matched case-insensitively.

        Raises
        ------
        ValueError
            For a task not in the model (listing the valid ones), or any task
            on a single-task model.
        """
        tasks = self.tasks
        if not tasks:
            if task is not None:
                raise ValueError(
                    f"{self.name} is a single-task model; it has no task {task!r} "
                    "(leave task unset)"
                )
            return None, 0
        if task is None:
            task = self.default_task
        for name in tasks:
            if name.lower() == str(task).lower():
                return name, self.network.config.task_map[name]
        raise ValueError(
            f"task {task!r} is not a task of {self.name}; "
            f"valid tasks: {', '.join(tasks)}"
        )

    def describe(self, task: str | None = None) -> dict[str, Any]:
        """Provenance: name, checkpoint file and sha256, task, dtype, device,
        and the dispersion term's settings when there is one."""
        out: dict[str, Any] = {
            "model": self.name,
            "checkpoint": str(self.path),
            "sha256": self.sha256,
            "task": task,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
        }
        if self.dispersion is not None:
            out["dispersion"] = self.dispersion.describe(task)
        return out


_CACHE: dict[tuple, Potential] = {}
_NETWORKS: dict[tuple, tuple[SevenNet, str]] = {}
_LOCK = threading.Lock()


def _auto_name() -> str:
    present = available_models()
    name = "7net-omni" if "7net-omni" in present else "7net-mf-0"
    log.info("model 'auto' resolved to %s", name)
    return name


def load_model(
    model: str | os.PathLike = "auto",
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    cache: bool = True,
) -> Potential:
    """Load a SevenNet checkpoint by registry name or path.

    Parameters
    ----------
    model : str or path-like
        ``"auto"`` (7net-omni when its checkpoint is present, else 7net-mf-0),
        a registry name (see :data:`~sevenomni_core.model.registry.MODELS`) or
        a checkpoint path.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
    dtype : str or torch.dtype
        ``"float32"`` (default) or ``"float64"``.
    cache : bool
        Reuse a model already loaded in this process with the same file,
        device and dtype (load once per worker).  Use False to get a private
        copy to train.

    Returns
    -------
    Potential

    Examples
    --------
    >>> pot = load_model("7net-mf-0")  # doctest: +SKIP
    >>> pot.tasks  # doctest: +SKIP
    ['R2SCAN', 'PBE']
    """
    name = _auto_name() if str(model) == "auto" else str(model)
    resolved_name, path = resolve_checkpoint(name)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    stat = path.stat()
    file_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(dev), dt)
    key = (resolved_name, str(path), *file_key)
    with _LOCK:
        if cache and key in _CACHE:
            return _CACHE[key]
        # one network per file, shared by every name the file is requested by
        shared = _NETWORKS.get(file_key) if cache else None
        if shared is None:
            ckpt = read_checkpoint(path)
            network = build_model(ckpt, source=str(path)).to(device=dev, dtype=dt)
            network.eval()
            for p in network.parameters():
                p.requires_grad_(False)
            shared = (network, file_sha256(path))
            if cache:
                _NETWORKS[file_key] = shared
        network, sha256 = shared
        spec = MODELS.get(resolved_name)
        default_task = None
        if network.tasks:
            candidates = [
                spec.default_task if spec else None,
                network.config.default_task,
                "mpa",
            ]
            default_task = next((t for t in candidates if t in network.tasks), None)
            default_task = default_task or network.tasks[0]
        pot = Potential(
            name=resolved_name,
            path=path,
            sha256=sha256,
            network=network,
            default_task=default_task,
            device=dev,
            dtype=dt,
        )
        if cache:
            _CACHE[key] = pot
        log.info("loaded %s from %s (sha256 %s)", resolved_name, path, sha256[:12])
        return pot
