"""A loaded model: the network plus its name, file, hash, tasks and device."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..options import BACKENDS, DTYPES
from .config import ModelConfig
from .header import checkpoint_config, file_sha256, read_checkpoint
from .registry import MODELS, auto_name, resolve_checkpoint

if TYPE_CHECKING:  # the dispersion package builds on this module
    from ..dispersion import D3Config
    from .network import SevenNet

__all__ = [
    "DTYPES",
    "DeferredNetwork",
    "Potential",
    "as_potential",
    "load_model",
    "resolve_backend",
    "resolve_device",
    "resolve_dtype",
]

log = logging.getLogger("sevenomni")

_DTYPES = {name: getattr(torch, name) for name in DTYPES}


def _device_forms() -> str:
    """The device names :func:`resolve_device` accepts, for error messages."""
    forms = ["auto", "cpu", "cuda", "cuda:N (N = 0, 1, ...)"]
    if torch.backends.mps.is_built():
        forms.append("mps")
    return ", ".join(forms)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU.

    Accepted: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and, where torch
    is built with it, ``"mps"`` (or a :class:`torch.device` of those types).

    Raises
    ------
    ValueError
        For any other name, naming it and the accepted ones; for a CUDA or
        MPS device that this machine does not have.
    """
    if isinstance(device, torch.device):
        text = str(device)
    elif isinstance(device, str):
        text = device.strip()
    else:
        raise ValueError(
            f"device {device!r} is not a device name; use one of {_device_forms()}"
        )
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text)
    if match is None:
        raise ValueError(
            f"device {text!r} is not a device name; use one of {_device_forms()}"
        )
    kind = match[1]
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {text!r} was requested but MPS (Apple GPU) is not available "
            "here; use device 'cpu' or 'auto'"
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = (
                f"this torch ({torch.__version__}) is built without CUDA"
                if torch.version.cuda is None
                else "no CUDA GPU is visible (check the driver and "
                "CUDA_VISIBLE_DEVICES)"
            )
            raise ValueError(
                f"device {text!r} was requested but CUDA is not available: {why}; "
                "use device 'cpu' or 'auto'"
            )
        count = torch.cuda.device_count()
        if match[2] is not None and int(match[2]) >= count:
            raise ValueError(
                f"device {text!r} was requested but this machine has {count} CUDA "
                f"device{'s' if count != 1 else ''} (cuda:0"
                + (f" to cuda:{count - 1}" if count > 1 else "")
                + ")"
            )
    return torch.device(text)


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


def resolve_backend(backend: str, device: torch.device) -> str:
    """``"e3nn"``, ``"cueq"``, or ``"auto"``: cuEquivariance on a CUDA device
    where its CUDA kernels are installed, else e3nn.

    Raises
    ------
    ValueError
        For an unknown backend.
    ImportError
        For ``"cueq"`` without ``cuequivariance-torch`` installed.
    """
    if backend == "e3nn":
        return backend  # without importing the kernels (and e3nn) to ask
    from ..nn import _cueq

    if backend == "auto":
        cuda = device.type == "cuda" and _cueq.cuda_kernels_installed()
        return "cueq" if cuda else "e3nn"
    if backend not in BACKENDS:
        raise ValueError(
            f"backend {backend!r} is not supported; use one of "
            f"{', '.join(BACKENDS)} or 'auto'"
        )
    if backend == "cueq" and not _cueq.installed():
        raise ImportError(
            "backend 'cueq' needs cuEquivariance: pip install 'sevenomni[cueq]' "
            "(cuequivariance-torch; add cuequivariance-ops-torch-cu12 for its "
            "CUDA kernels)"
        )
    return backend


class DeferredNetwork:
    """A checkpoint's network, built on first use.

    Its config (tasks, cutoff) is read from the checkpoint at once; the torch
    module, which takes seconds to build, is built when anything else is
    asked of it.  :func:`load_model` with ``build=False`` gives a Potential
    holding one: enough to name the model, resolve its tasks and compute
    reuse keys, so that planning a run whose results are all stored builds no
    network.
    """

    def __init__(self, config: ModelConfig, build: Callable[[], SevenNet]):
        self.config = config
        self._build: Callable[[], SevenNet] | None = build
        self._network: SevenNet | None = None
        self._lock = threading.Lock()

    @property
    def tasks(self) -> list[str]:
        """Task names, in index order (as :attr:`SevenNet.tasks`)."""
        return self.config.tasks

    @property
    def cutoff(self) -> float:
        """Neighbour cutoff in Å."""
        return self.config.cutoff

    @property
    def built(self) -> bool:
        """Whether the network has been built."""
        return self._network is not None

    def get(self) -> SevenNet:
        """The network, built now if it was not yet."""
        with self._lock:
            if self._network is None:
                self._network = self._build()
                self._build = None  # frees the checkpoint's weights
            return self._network

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_build", "_network", "_lock"):
            raise AttributeError(name)  # copy/pickle probes; our own state
        return getattr(self.get(), name)

    def __call__(self, *args, **kwargs) -> dict:
        return self.get()(*args, **kwargs)


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
    network : SevenNet or DeferredNetwork
        The torch module, in eval mode, on :attr:`device` in :attr:`dtype`
        (built on first use when loaded with ``build=False``).
    default_task : str or None
        Task used when none is given; None for single-task models.
    dispersion : D3Config or None
        A D3 term added to every result (see
        :func:`sevenomni_core.dispersion.with_dispersion`); None for none.
    backend : str
        Kernels of the network's forward pass: ``"e3nn"`` or ``"cueq"``
        (cuEquivariance); results agree to rounding.
    """

    name: str
    path: Path
    sha256: str
    network: SevenNet
    default_task: str | None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    dispersion: D3Config | None = None
    backend: str = "e3nn"

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

    def evaluate(self, graph: dict[str, torch.Tensor], **kwargs) -> dict:
        """The network's forward pass on ``graph`` with this model's backend
        (keyword arguments as :meth:`SevenNet.forward`); no dispersion."""
        return self.network(graph, backend=self.backend, **kwargs)

    def describe(self, task: str | None = None) -> dict[str, Any]:
        """Provenance: name, checkpoint file and sha256, task, dtype, device,
        backend, and the dispersion term's settings when there is one."""
        out: dict[str, Any] = {
            "model": self.name,
            "checkpoint": str(self.path),
            "sha256": self.sha256,
            "task": task,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "backend": self.backend,
        }
        if self.dispersion is not None:
            out["dispersion"] = self.dispersion.describe(task)
        return out


_CACHE: dict[tuple, Potential] = {}
_NETWORKS: dict[tuple, tuple[SevenNet, str]] = {}
_LOCK = threading.Lock()


def load_model(
    model: str | os.PathLike = "auto",
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    cache: bool = True,
    backend: str = "e3nn",
    build: bool = True,
) -> Potential:
    """Load a SevenNet checkpoint by registry name or path.

    Parameters
    ----------
    model : str or path-like
        ``"auto"`` (7net-omni when its checkpoint is present, else 7net-mf-0),
        a registry name (see :data:`~sevenomni_core.model.registry.MODELS`) or
        a checkpoint path.
    device : str or torch.device
        ``"auto"`` (default: CUDA when present, as everywhere else), ``"cpu"``,
        ``"cuda"`` or ``"cuda:1"``.
    dtype : str or torch.dtype
        ``"float32"`` (default) or ``"float64"``.
    cache : bool
        Reuse a model already loaded in this process with the same file,
        device and dtype (load once per worker).  Use False to get a private
        copy to train.
    backend : str
        ``"e3nn"`` (default), ``"cueq"`` (cuEquivariance) or ``"auto"``
        (cueq on CUDA where its kernels are installed); see
        :func:`resolve_backend`.
    build : bool
        Build the network now (default).  False reads only the checkpoint's
        config and hash: the network (a :class:`DeferredNetwork`) is built on
        first use, so that naming the model and its tasks costs no build.

    Returns
    -------
    Potential

    Examples
    --------
    >>> pot = load_model("7net-mf-0")  # doctest: +SKIP
    >>> pot.tasks  # doctest: +SKIP
    ['R2SCAN', 'PBE']
    """
    name = auto_name() if str(model) == "auto" else str(model)
    resolved_name, path = resolve_checkpoint(name)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    backend = resolve_backend(backend, dev)
    stat = path.stat()
    file_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(dev), dt)
    key = (resolved_name, str(path), *file_key)
    with _LOCK:
        if cache and key in _CACHE:
            pot = _CACHE[key]
            if build and isinstance(pot.network, DeferredNetwork):
                pot = _CACHE[key] = replace(pot, network=pot.network.get())
            return _with_backend(pot, backend)
        # one network per file, shared by every name the file is requested by
        shared = _NETWORKS.get(file_key) if cache else None
        if shared is None:
            ckpt = read_checkpoint(path)
            network = DeferredNetwork(
                checkpoint_config(ckpt, str(path)),
                lambda: _build(ckpt, str(path), dev, dt),
            )
            shared = (network, file_sha256(path))
        network, sha256 = shared
        if build and isinstance(network, DeferredNetwork):
            network = network.get()
            shared = (network, sha256)
        if cache:
            _NETWORKS[file_key] = shared
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
        return _with_backend(pot, backend)


def _build(ckpt: dict, source: str, device: torch.device, dtype: torch.dtype):
    """The network of a checkpoint, in eval mode, with frozen weights."""
    from .checkpoint import build_model  # e3nn: imported when a network is built

    network = build_model(ckpt, source=source).to(device=device, dtype=dtype)
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    return network


def _with_backend(pot: Potential, backend: str) -> Potential:
    return pot if pot.backend == backend else replace(pot, backend=backend)


def as_potential(
    model: str | os.PathLike | Potential,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    backend: str | None = None,
) -> Potential:
    """``model`` itself when it is a :class:`Potential`, else :func:`load_model`.

    ``backend`` None keeps a given Potential's backend (and loads with
    ``"e3nn"``); a name sets it.
    """
    if isinstance(model, Potential):
        if backend is None:
            return model
        return _with_backend(model, resolve_backend(backend, model.device))
    return load_model(model, device, dtype, backend=backend or "e3nn")
