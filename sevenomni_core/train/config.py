"""The training configuration: one validated YAML file.

Every section is a pydantic model that forbids unknown keys, so a typo is
reported with the key path that holds it (e.g. ``loss.forces_weight``).

Examples
--------
A minimal multi-task run from scratch::

    seed: 0
    output: runs/two-tasks
    epochs: 20
    model:
      architecture: {cutoff: 4.5, channel: 16, lmax: 1, num_convolution_layer: 2}
    data:
      pbe: {train: [pbe.extxyz]}
      r2scan: {train: [r2scan.extxyz]}
    regularization: {selective_l2: 1.0e-3}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["TrainConfig", "TrainConfigError", "load_train_config"]


class TrainConfigError(ValueError):
    """A training config that cannot be used; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskData(_Section):
    """The files of one task (DFT protocol).

    Attributes
    ----------
    train : list of str
        extxyz files or ASE databases with energy, forces (and stress).
    validation : list of str
        Held-out files; when empty, ``validation_fraction`` of ``train``
        (chosen with the seed) is held out instead.
    """

    train: list[str] = Field(min_length=1)
    validation: list[str] = []


class DbsFile(_Section):
    """A domain-bridging file: structures of one domain, labelled by ``task``."""

    path: str
    task: str


class DbsSection(_Section):
    """The domain-bridging set.

    ``fraction`` is the share of each epoch's samples drawn from it (with
    replacement); ``None`` uses its frames once per epoch like any data.
    """

    files: list[DbsFile] = []
    fraction: float | None = Field(default=None, ge=0.0, lt=1.0)


class ModelSection(_Section):
    """Where the network comes from.

    Attributes
    ----------
    source : str, optional
        A registry name (``7net-mf-0``, ``7net-omni``) or checkpoint path to
        fine-tune.  Without it a new model is built from ``architecture``.
    architecture : dict
        SevenNet config keys of a new model (``cutoff``, ``channel``,
        ``lmax``, ``num_convolution_layer``, ``weight_nn_hidden_neurons``,
        ``use_modal_*``, ...); unset multi-task options default to the
        SevenNet-Omni layout (task inputs in both self-interactions and the
        readout, task-wise energy shifts).
    new_tasks : dict
        Tasks to append to ``source``, each mapped to the existing task its
        outputs start equal to (``{my_dft: PBE}``); for a single-task source
        the existing task is named ``base``.
    freeze_shared : bool
        Train only the task-specific parameters (task weights and shifts).
    fit_references : bool
        Before training, move each new task's per-element energy shifts onto
        its data by least squares (your code's absolute energies differ from
        the source's; forces and stress are unchanged).  False keeps the new
        task exactly equal to its source.
    """

    source: str | None = None
    architecture: dict[str, Any] = {}
    new_tasks: dict[str, str] = {}
    freeze_shared: bool = False
    fit_references: bool = True

    @model_validator(mode="after")
    def _one_origin(self) -> ModelSection:
        if self.source is None and not self.architecture:
            raise ValueError("give model.source (a checkpoint) or model.architecture")
        if self.source is not None and self.architecture:
            raise ValueError(
                "model.source and model.architecture exclude each other: a "
                "pretrained model keeps its architecture"
            )
        if self.source is None and self.new_tasks:
            raise ValueError("model.new_tasks needs model.source")
        return self


class LossSection(_Section):
    """Loss on energy per atom (eV/atom), forces (eV/Å) and stress (GPa).

    The default weights are sevenn's (energy 1, forces 0.1, stress 1e-6 on
    kbar, i.e. 1e-4 on GPa).
    """

    kind: Literal["mae", "huber", "mse"] = "mse"
    huber_delta: float = Field(default=0.01, gt=0)
    energy_weight: float = Field(default=1.0, ge=0)
    force_weight: float = Field(default=0.1, ge=0)
    stress_weight: float = Field(default=1e-4, ge=0)


class RegularizationSection(_Section):
    """Selective L2: ``weight * sum(w**2)`` over task weights of interactions."""

    selective_l2: float = Field(default=0.0, ge=0)


class OptimizerSection(_Section):
    """Optimiser, schedule, clipping and EMA."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(default=5e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    schedule: Literal["onecycle", "cosine", "constant"] = "cosine"
    grad_clip: float | None = Field(default=10.0, gt=0)
    ema_decay: float | None = Field(default=None, gt=0, lt=1)


class TrainConfig(_Section):
    """A training or fine-tuning run (see the module docstring)."""

    seed: int = 0
    output: str = "train-output"
    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=8, ge=1)
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    task_balanced: bool = True
    device: str = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    model: ModelSection
    data: dict[str, TaskData] = Field(min_length=1)
    dbs: DbsSection = DbsSection()
    loss: LossSection = LossSection()
    regularization: RegularizationSection = RegularizationSection()
    optimizer: OptimizerSection = OptimizerSection()
    base: Path = Field(default=Path("."), exclude=True)

    def resolve(self, path: str) -> Path:
        """A file named in the config, relative to the config's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else self.base / p

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.output).resolve()


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{key}: {e['msg']}")
    return "; ".join(lines)


def load_train_config(path: str | os.PathLike | dict) -> TrainConfig:
    """Read and validate a training config (a YAML file or a dictionary).

    Raises
    ------
    TrainConfigError
        For an unreadable file, unknown keys or wrong types, naming the key.
    """
    base = Path(".")
    if isinstance(path, dict):
        raw = path
        where = "config"
    else:
        where = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise TrainConfigError(f"training config {path} does not exist") from None
        except yaml.YAMLError as err:
            raise TrainConfigError(f"{path}: not valid YAML: {err}") from err
        base = Path(path).resolve().parent
    if not isinstance(raw, dict):
        raise TrainConfigError(f"{where}: expected a mapping of settings")
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as err:
        raise TrainConfigError(f"{where}: {_describe(err)}") from None
    cfg.base = base
    return cfg
