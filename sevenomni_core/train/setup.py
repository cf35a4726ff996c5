"""From a training config to a network and its samples.

A new model is built from SevenNet config keys, with its species taken
from the data, its tasks from the data sections, per-task elemental energy
references by least squares, the force RMS as energy scale and the mean
neighbour count as convolution denominator.  A pretrained model is loaded
as a private copy, with new tasks appended on request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from ase.data import chemical_symbols

from ..model.checkpoint import build_model, read_checkpoint
from ..model.config import ModelConfig
from ..model.network import SevenNet
from ..model.registry import resolve_checkpoint
from .config import TrainConfig, TrainConfigError
from .dataset import Frame, Sample, check_species, make_samples, read_frames
from .references import (
    average_neighbors,
    elemental_references,
    force_rms,
    refit_task_shift,
)
from .tasks import BASE_TASK, append_tasks, task_masks

__all__ = ["Setup", "prepare"]

log = logging.getLogger("sevenomni.train")

#: Defaults of a new model: a small SevenNet with the SevenNet-Omni task layout.
NEW_MODEL_DEFAULTS: dict[str, Any] = {
    "cutoff": 5.0,
    "channel": 32,
    "lmax": 1,
    "num_convolution_layer": 3,
    "is_parity": False,
    "weight_nn_hidden_neurons": [64, 64],
    "radial_basis": {"radial_basis_name": "bessel", "bessel_basis_num": 8},
    "cutoff_function": {"cutoff_function_name": "poly_cut", "poly_cut_p_value": 6},
    "self_connection_type": "nequip",
    "train_shift_scale": True,
    "use_modal_self_inter_intro": True,
    "use_modal_self_inter_outro": True,
    "use_modal_output_block": True,
    "use_modal_wise_shift": True,
    "use_modal_wise_scale": False,
}


@dataclass
class Setup:
    """A network ready to train and its data.

    Attributes
    ----------
    model : SevenNet
    base_config : dict
        The sevenn config the checkpoints are written from.
    tasks : list of str
        The model's task names in index order (``[]`` single-task).
    train, validation : dict
        Samples per data task.
    dbs : list of Sample
        Domain-bridging samples.
    """

    model: SevenNet
    base_config: dict[str, Any]
    tasks: list[str]
    train: dict[str, list[Sample]] = field(default_factory=dict)
    validation: dict[str, list[Sample]] = field(default_factory=dict)
    dbs: list[Sample] = field(default_factory=list)


def _read(cfg: TrainConfig) -> tuple[dict, dict, list[Frame]]:
    rng = np.random.default_rng(cfg.seed)
    train, valid = {}, {}
    for task, files in cfg.data.items():
        frames = [f for p in files.train for f in read_frames(cfg.resolve(p), task)]
        held = [f for p in files.validation for f in read_frames(cfg.resolve(p), task)]
        if not files.validation and cfg.validation_fraction > 0 and len(frames) > 1:
            n = max(1, round(cfg.validation_fraction * len(frames)))
            order = rng.permutation(len(frames))
            held = [frames[k] for k in sorted(order[:n])]
            frames = [frames[k] for k in sorted(order[n:])]
        train[task], valid[task] = frames, held
    dbs = []
    for entry in cfg.dbs.files:
        if entry.task not in cfg.data:
            raise TrainConfigError(
                f"dbs.files: task {entry.task!r} of {entry.path} is not a task "
                f"in data (tasks: {', '.join(cfg.data)})"
            )
        dbs += read_frames(cfg.resolve(entry.path), entry.task)
    return train, valid, dbs


def _new_model(cfg: TrainConfig, train: dict, dbs: list[Frame]) -> tuple:
    everything = [f for frames in train.values() for f in frames] + dbs
    species = sorted({int(z) for f in everything for z in f.atoms.numbers})
    tasks = list(cfg.data)
    raw = {**NEW_MODEL_DEFAULTS, **cfg.model.architecture}
    raw["chemical_species"] = [chemical_symbols[z] for z in species]
    raw["_type_map"] = {z: k for k, z in enumerate(species)}
    raw["use_modality"] = len(tasks) > 1
    raw["_modal_map"] = {t: k for k, t in enumerate(tasks)}
    if len(tasks) > 1:
        raw.setdefault("default_modal", tasks[0])
    try:
        config = ModelConfig.from_sevenn(raw)
    except (KeyError, TypeError, ValueError) as err:
        raise TrainConfigError(f"model.architecture: {err}") from err
    n_species = len(species)
    if config.task_wise_shift:
        shift = torch.tensor(
            np.stack(
                [elemental_references(train[t] + _of(dbs, t), species) for t in tasks]
            )
        )
    else:
        shift = torch.tensor(elemental_references(everything, species))
    scale = torch.full((n_species,), force_rms(everything))
    if config.task_wise_scale:
        scale = scale.expand(len(tasks), n_species).clone()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = SevenNet(config, shift=shift, scale=scale)
    # every task starts on the shared surface: task rows zero, shifts per task
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, mask in task_masks(model).items():
            if name.endswith("linear.weight"):
                params[name][mask] = 0.0
    return model, raw


def _of(frames: list[Frame], task: str) -> list[Frame]:
    return [f for f in frames if f.task == task]


def _pretrained(cfg: TrainConfig) -> tuple[SevenNet, dict]:
    try:
        _, path = resolve_checkpoint(cfg.model.source)
    except (ValueError, FileNotFoundError) as err:
        raise TrainConfigError(f"model.source: {err}") from err
    ckpt = read_checkpoint(path)
    model = build_model(ckpt, source=str(path))
    if cfg.model.new_tasks:
        try:
            model = append_tasks(model, cfg.model.new_tasks)
        except ValueError as err:
            raise TrainConfigError(str(err)) from err
    return model, dict(ckpt["config"])


def prepare(cfg: TrainConfig) -> Setup:
    """Read the data, check it against the model, and build the samples.

    Raises
    ------
    TrainConfigError
        For task names the model does not have, or a bad architecture.
    DatasetError
        For unreadable files, missing or NaN labels, or elements outside a
        pretrained model's species (naming the file and frame).
    """
    train, valid, dbs = _read(cfg)
    if cfg.model.source is None:
        model, base = _new_model(cfg, train, dbs)
    else:
        model, base = _pretrained(cfg)
        name = cfg.model.source
        known = model.tasks or [BASE_TASK]
        for task in cfg.data:
            if task not in known and not (not model.tasks and len(cfg.data) == 1):
                same = [t for t in known if t.lower() == task.lower()]
                hint = (
                    f"did you mean {same[0]!r}?"
                    if same
                    else "add it with model.new_tasks"
                )
                raise TrainConfigError(
                    f"data.{task}: task {task!r} is not in the model "
                    f"(tasks: {', '.join(known)}); {hint}"
                )
        for frames in [*train.values(), *valid.values(), dbs]:
            check_species(frames, model.species, name)
    model = model.to(dtype=getattr(torch, cfg.dtype))
    task_map = model.config.task_map
    z_to_index = model.z_to_index
    setup = Setup(model=model, base_config=base, tasks=model.tasks)
    for task in cfg.data:
        setup.train[task] = make_samples(
            train[task], model.cutoff, z_to_index, task_map
        )
        setup.validation[task] = make_samples(
            valid[task], model.cutoff, z_to_index, task_map
        )
    setup.dbs = make_samples(dbs, model.cutoff, z_to_index, task_map)
    if cfg.model.new_tasks and cfg.model.fit_references:
        if not model.config.task_wise_shift:
            log.warning("%s has no task-wise shifts: references not refitted", name)
        for task in cfg.model.new_tasks:
            if setup.train.get(task):
                delta = refit_task_shift(model, setup.train[task], task_map[task])
                log.info(
                    "task %s: references moved by up to %.3f eV/atom",
                    task,
                    float(np.abs(delta).max()),
                )
    denominator = cfg.model.architecture.get("conv_denominator", "avg_num_neigh")
    if cfg.model.source is None and isinstance(denominator, str):
        avg = average_neighbors(
            [s.graph for samples in setup.train.values() for s in samples]
        )
        for t in range(model.num_layers):
            model._modules[f"{t}_convolution"].denominator.data.fill_(avg)
        log.info("convolution denominator: %.3f neighbours per atom", avg)
    return setup
