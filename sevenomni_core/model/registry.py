"""Where checkpoints are found: the models folder and the ``sevenn`` wheel.

Nothing is downloaded.  A name resolves to a file in, in order:

1. the models folder: ``$SEVENOMNI_MODEL_DIR``, else a per-user cache folder
   (``$XDG_CACHE_HOME/sevenomni/models``, default ``~/.cache/sevenomni/models``),
   either directly or in the sevenn-style subfolder;
2. the ``pretrained_potentials`` folder of the installed ``sevenn`` wheel,
   which ships 7net-0 (both versions), 7net-l3i5 and 7net-mf-0.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MODELS",
    "ModelNotFoundError",
    "ModelSpec",
    "auto_name",
    "available_models",
    "cache_root",
    "model_dirs",
    "resolve_checkpoint",
]

_RELEASES = "https://github.com/MDIL-SNU/SevenNet/releases/download"


@dataclass(frozen=True)
class ModelSpec:
    """A released checkpoint.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"7net-omni"``.
    filename : str
        Official file name.
    folder : str
        Sub-folder name used by the ``sevenn`` wheel and its cache.
    default_task : str or None
        Task used when none is given (multi-task models).
    release : str or None
        Where the official release publishes the file (None: in the wheel).
    """

    name: str
    filename: str
    folder: str
    default_task: str | None = None
    release: str | None = None


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("7net-0", "checkpoint_sevennet_0.pth", "SevenNet_0__11Jul2024"),
        ModelSpec(
            "7net-0_22May2024", "checkpoint_sevennet_0.pth", "SevenNet_0__22May2024"
        ),
        ModelSpec("7net-l3i5", "checkpoint_l3i5.pth", "SevenNet_l3i5"),
        ModelSpec("7net-mf-0", "checkpoint_sevennet_mf_0.pth", "SevenNet_MF_0", "PBE"),
        ModelSpec(
            "7net-mf-ompa",
            "checkpoint_sevennet_mf_ompa.pth",
            "SevenNet_MF_ompa",
            "mpa",
            f"{_RELEASES}/v0.11.0.cp/checkpoint_sevennet_mf_ompa.pth",
        ),
        ModelSpec(
            "7net-omat",
            "checkpoint_sevennet_omat.pth",
            "SevenNet_omat",
            None,
            f"{_RELEASES}/v0.11.0.cp/checkpoint_sevennet_omat.pth",
        ),
        ModelSpec(
            "7net-omni",
            "checkpoint_sevennet_omni.pth",
            "SevenNet_omni",
            "mpa",
            f"{_RELEASES}/v0.12.0.cp/checkpoint_sevennet_omni.pth",
        ),
        ModelSpec(
            "7net-omni-i8",
            "checkpoint_sevennet_omni_i8.pth",
            "SevenNet_omni_i8",
            "mpa",
            f"{_RELEASES}/v0.12.1.cp/checkpoint_sevennet_omni_i8.pth",
        ),
        ModelSpec(
            "7net-omni-i12",
            "checkpoint_sevennet_omni_i12.pth",
            "SevenNet_omni_i12",
            "mpa",
            f"{_RELEASES}/v0.12.1.cp/checkpoint_sevennet_omni_i12.pth",
        ),
    )
}

#: Names accepted besides the registry's own (case-insensitive look-up).
ALIASES = {"7net-0_11jul2024": "7net-0", "sevennet-0": "7net-0"}


class ModelNotFoundError(FileNotFoundError):
    """No checkpoint file for a model name or path."""


def cache_root() -> Path:
    """The per-user cache folder of sevenomni: ``$XDG_CACHE_HOME/sevenomni``
    (default ``~/.cache/sevenomni``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "sevenomni"


def _user_model_dir() -> Path:
    env = os.environ.get("SEVENOMNI_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    return cache_root() / "models"


def _wheel_dir() -> Path | None:
    spec = importlib.util.find_spec("sevenn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained_potentials"


def model_dirs() -> list[Path]:
    """The folders searched for checkpoints, in order."""
    dirs = [_user_model_dir()]
    wheel = _wheel_dir()
    if wheel is not None:
        dirs.append(wheel)
    return dirs


def _candidates(spec: ModelSpec, folder: Path) -> list[Path]:
    nested = folder / spec.folder / spec.filename
    flat = folder / spec.filename
    # the flat name of 7net-0 is shared by both versions: it means the newer one
    if spec.name == "7net-0_22May2024":
        return [nested]
    return [nested, flat]


def canonical_name(name: str) -> str | None:
    """The registry name for ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    lowered = ALIASES.get(lowered, lowered)
    for key in MODELS:
        if key.lower() == lowered:
            return key
    return None


def resolve_checkpoint(model: str | os.PathLike) -> tuple[str, Path]:
    """Find the checkpoint of a registry name or a path.

    Returns
    -------
    name : str
        The registry name, or the file's stem for a path.
    path : pathlib.Path
        The checkpoint file.

    Raises
    ------
    ModelNotFoundError
        With the file name, the folders searched and the release address.
    """
    name = canonical_name(str(model))
    if name is None:
        path = Path(model).expanduser()
        if path.is_file():
            return path.stem, path
        known = ", ".join(MODELS)
        raise ModelNotFoundError(
            f"model {str(model)!r} is neither a known name ({known}) "
            "nor an existing file"
        )
    spec = MODELS[name]
    searched = []
    for folder in model_dirs():
        for candidate in _candidates(spec, folder):
            searched.append(str(candidate))
            if candidate.is_file():
                return name, candidate
    target = (
        f"{_user_model_dir()} (the SEVENOMNI_MODEL_DIR in use)"
        if os.environ.get("SEVENOMNI_MODEL_DIR")
        else f"{_user_model_dir()} (or set SEVENOMNI_MODEL_DIR)"
    )
    where = (
        f"It is published at {spec.release}; download it on a machine with "
        f"network access and copy it into {target}."
        if spec.release
        else "It ships in the sevenn wheel: pip install 'sevenn==0.13.0'."
    )
    raise ModelNotFoundError(
        f"checkpoint {spec.filename} for model {name!r} not found; searched: "
        + "; ".join(searched)
        + f". {where} Nothing is downloaded at run time."
    )


def available_models() -> dict[str, Path]:
    """Registry names whose checkpoint is present, with their files."""
    found = {}
    for name in MODELS:
        try:
            found[name] = resolve_checkpoint(name)[1]
        except ModelNotFoundError:
            continue
    return found


def auto_name() -> str:
    """The model ``"auto"`` stands for: 7net-omni when present, else 7net-mf-0."""
    present = available_models()
    name = "7net-omni" if "7net-omni" in present else "7net-mf-0"
    logging.getLogger("sevenomni").info("model 'auto' resolved to %s", name)
    return name
