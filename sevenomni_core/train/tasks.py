"""Task-specific parameters: which they are, and appending a new task.

In a multi-task SevenNet the task one-hot is appended to the inputs of some
linear layers, so each task owns one row of weights per such layer (a
task-wise bias of that layer's scalar outputs), and, with task-wise shift
and scale, one row of the energy tables.  Everything else is shared.
"""

from __future__ import annotations

import dataclasses
import re

import torch

from ..model.network import SevenNet
from ..nn import IrrepsLinear

__all__ = [
    "BASE_TASK",
    "append_tasks",
    "interaction_task_weights",
    "task_masks",
]

#: The name a single-task model's only task gets when tasks are appended.
BASE_TASK = "base"

_INTERACTION = re.compile(r"^\d+_self_interaction_[12]$")


def _task_rows(layer: IrrepsLinear) -> list[slice]:
    """Slices of ``layer.linear.weight`` that belong to the task inputs."""
    out = []
    for _, _, off, mul_in, mul_out, _, is_task in layer._plan:
        if is_task:
            out.append(slice(off, off + mul_in * mul_out))
    return out


def interaction_task_weights(
    model: SevenNet,
) -> list[tuple[str, torch.nn.Parameter, slice]]:
    """The task weights of the interaction blocks (the selectively regularised set).

    Returns ``(parameter name, parameter, slice)`` for the task rows of every
    ``{t}_self_interaction_1`` and ``{t}_self_interaction_2``; the readout's
    task rows and the energy shifts are not included.
    """
    out = []
    for name, module in model.named_children():
        if _INTERACTION.match(name) and isinstance(module, IrrepsLinear):
            for rows in _task_rows(module):
                out.append((f"{name}.linear.weight", module.linear.weight, rows))
    return out


def task_masks(model: SevenNet) -> dict[str, torch.Tensor]:
    """Boolean masks of every task-specific entry, by parameter name.

    Covers the task rows of all task-aware linear layers and task-wise
    shift/scale tables; parameters without task entries are absent.
    """
    masks: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, IrrepsLinear) and module.num_tasks:
            w = module.linear.weight
            mask = torch.zeros(w.shape, dtype=torch.bool, device=w.device)
            for rows in _task_rows(module):
                mask[rows] = True
            masks[f"{name}.linear.weight"] = mask
    rescale = model.rescale_atomic_energy
    for key in ("shift", "scale"):
        table = getattr(rescale, key)
        if table.dim() == 2:
            masks[f"rescale_atomic_energy.{key}"] = torch.ones_like(
                table, dtype=torch.bool
            )
    return masks


def _transfer_linear(
    old: IrrepsLinear, new: IrrepsLinear, rows_from: list[int | None]
) -> torch.Tensor:
    """Weights of ``new`` computing what ``old`` did, task rows by ``rows_from``.

    ``rows_from[k]`` is the old task row that new task ``k`` copies (None for
    a zero row).  Weights are rescaled by the ratio of e3nn path weights,
    which change with the number of task inputs.
    """
    old_w = old.linear.weight.detach()
    weight = torch.zeros_like(new.linear.weight)
    old_plan = {(p[0], p[1]): p for p in old._plan}
    n_x = len(new.irreps_x)
    for i_in, i_out, off, mul_in, mul_out, pw, is_task in new._plan:
        match = old_plan.get((i_in, i_out)) if i_in < n_x or old.num_tasks else None
        if match is None:
            continue
        _, _, o_off, o_mul_in, _, o_pw, _ = match
        block = old_w[o_off : o_off + o_mul_in * mul_out].view(o_mul_in, mul_out)
        block = block * (o_pw / pw)
        target = weight[off : off + mul_in * mul_out].view(mul_in, mul_out)
        if not is_task:
            target.copy_(block)
            continue
        for k, src in enumerate(rows_from):
            if src is not None:
                target[k] = block[src]
    return weight


def append_tasks(model: SevenNet, new_tasks: dict[str, str]) -> SevenNet:
    """A copy of ``model`` with tasks appended, each equal to its source task.

    Parameters
    ----------
    model : SevenNet
        Any model.  A single-task model becomes multi-task, with its only
        task named :data:`BASE_TASK` and task inputs in both
        self-interactions and the readout, and task-wise shifts.
    new_tasks : dict
        ``{new task: existing task}``.

    Returns
    -------
    SevenNet
        The new network (same dtype and device); its new tasks start with
        the source task's rows, so their outputs are identical to it.

    Raises
    ------
    ValueError
        For a new task that exists already or a source task that does not.
    """
    cfg = model.config
    old_tasks = cfg.tasks or [BASE_TASK]
    for new, src in new_tasks.items():
        if new in old_tasks:
            raise ValueError(f"model.new_tasks: task {new!r} exists already")
        if src not in old_tasks:
            raise ValueError(
                f"model.new_tasks: source task {src!r} of {new!r} is not in the "
                f"model (tasks: {', '.join(old_tasks)})"
            )
    task_map = {t: k for k, t in enumerate(old_tasks)}
    for new in new_tasks:
        task_map[new] = len(task_map)
    changes = {"task_map": task_map}
    if not cfg.tasks:
        changes.update(
            task_self_inter_intro=True,
            task_self_inter_outro=True,
            task_output_block=True,
            task_wise_shift=True,
            default_task=BASE_TASK,
        )
    new_cfg = dataclasses.replace(cfg, **changes)
    old_index = {t: k for k, t in enumerate(old_tasks)}
    rows_from: list[int | None] = [old_index[t] for t in old_tasks]
    rows_from += [old_index[src] for src in new_tasks.values()]
    param = next(model.parameters())
    rescale = model.rescale_atomic_energy
    tables = {}
    for key, wise in (
        ("shift", new_cfg.task_wise_shift),
        ("scale", new_cfg.task_wise_scale),
    ):
        table = getattr(rescale, key).detach()
        if wise:
            if table.dim() < 2:  # (S,) or (1,) -> one row per task
                table = table.expand(len(old_tasks), model.config.num_species)
            table = table[rows_from].clone()
        tables[key] = table
    net = SevenNet(new_cfg, shift=tables["shift"], scale=tables["scale"])
    net = net.to(device=param.device, dtype=param.dtype)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["rescale_atomic_energy.shift"] = tables["shift"]
    state["rescale_atomic_energy.scale"] = tables["scale"]
    old_modules = dict(model.named_modules())
    for name, module in net.named_modules():
        if isinstance(module, IrrepsLinear):
            old = old_modules[name]
            old_rows = rows_from if old.num_tasks else [None] * len(rows_from)
            state[f"{name}.linear.weight"] = _transfer_linear(old, module, old_rows)
    net.load_state_dict(state, strict=True)
    net.rescale_atomic_energy.shift.requires_grad_(
        model.rescale_atomic_energy.shift.requires_grad
    )
    net.rescale_atomic_energy.scale.requires_grad_(
        model.rescale_atomic_energy.scale.requires_grad
    )
    return net.train(model.training)
