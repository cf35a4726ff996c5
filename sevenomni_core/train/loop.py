"""The training loop: epochs, validation, checkpoints and resuming.

Each epoch's checkpoint (``last.pth``) is a sevenn-format model file that
also carries the training state (raw weights, optimiser, schedule, EMA,
history) under ``"sevenomni_train"``.  Running the same config again with
the same output folder continues from it; because the sample order depends
only on the seed and the epoch, the result equals an uninterrupted run.
``best.pth`` holds the model with the lowest validation loss.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..model.checkpoint import save_checkpoint
from ..model.network import SevenNet
from ..model.potential import resolve_device
from .config import TrainConfig, TrainConfigError, load_train_config
from .dataset import Sample, collate_samples
from .loss import Metrics, loss_terms
from .regularization import selective_l2
from .sampler import epoch_order
from .setup import Setup, prepare
from .tasks import BASE_TASK, task_masks

__all__ = ["TrainResult", "train"]

log = logging.getLogger("sevenomni.train")

STATE_KEY = "sevenomni_train"


@dataclass
class TrainResult:
    """Where the run wrote its models, and its per-epoch history."""

    last: Path
    best: Path
    history: list[dict] = field(default_factory=list)


def config_hash(cfg: TrainConfig) -> str:
    """Hash of everything that shapes the run (the config, paths as written)."""
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _to(graph: dict, labels: dict, device: torch.device) -> tuple[dict, dict]:
    return (
        {k: v.to(device) for k, v in graph.items()},
        {k: v.to(device) for k, v in labels.items()},
    )


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Ema:
    """Exponential moving average of the trainable parameters."""

    def __init__(self, model: SevenNet, decay: float):
        self.decay = decay
        self.shadow = {
            n: p.detach().clone()
            for n, p in model.named_parameters()
            if p.requires_grad
        }

    @torch.no_grad()
    def update(self, model: SevenNet) -> None:
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach(), 1.0 - self.decay)

    @contextlib.contextmanager
    def applied(self, model: SevenNet) -> Iterator[None]:
        """Temporarily load the averaged weights into ``model``."""
        params = dict(model.named_parameters())
        saved = {n: params[n].detach().clone() for n in self.shadow}
        with torch.no_grad():
            for n, v in self.shadow.items():
                params[n].copy_(v)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, v in saved.items():
                    params[n].copy_(v)


class _Frozen:
    """Keeps the shared entries of partly task-specific parameters fixed."""

    def __init__(self, model: SevenNet):
        self.masks = task_masks(model)
        self.saved = {}
        for name, p in model.named_parameters():
            mask = self.masks.get(name)
            if mask is None:
                p.requires_grad_(False)
            else:
                p.requires_grad_(True)
                if not bool(mask.all()):
                    self.saved[name] = (p.detach().clone(), mask)

    @torch.no_grad()
    def restore(self, model: SevenNet) -> None:
        params = dict(model.named_parameters())
        for name, (value, mask) in self.saved.items():
            params[name][~mask] = value[~mask]


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total: int):
    sched = torch.optim.lr_scheduler
    if cfg.optimizer.schedule == "onecycle":
        return sched.OneCycleLR(opt, max_lr=cfg.optimizer.lr, total_steps=total)
    if cfg.optimizer.schedule == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=total)
    return sched.LambdaLR(opt, lambda _: 1.0)


def _evaluate(
    model: SevenNet, samples: dict[str, list[Sample]], cfg: TrainConfig, device
) -> tuple[float, dict]:
    """Validation loss (mean over batches) and per-task metrics."""
    tasks = model.tasks or [BASE_TASK]
    metrics = Metrics(tasks)
    losses = []
    for task_samples in samples.values():
        for chunk in _batches(task_samples, cfg.batch_size):
            graph, labels = _to(*collate_samples(chunk), device)
            pred = model(graph, compute_forces=True, compute_stress=True)
            pred = {k: v.detach() for k, v in pred.items()}
            losses.append(float(loss_terms(pred, labels, graph, cfg.loss)["total"]))
            metrics.add(pred, labels, graph)
    loss = sum(losses) / len(losses) if losses else math.nan
    return loss, metrics.summary()


def _format(epoch: int, cfg: TrainConfig, row: dict, names: dict[str, str]) -> str:
    parts = [
        f"epoch {epoch:>3}/{cfg.epochs}",
        f"lr {row['lr']:.2e}",
        f"train {row['train_loss']:.4g}",
        f"valid {row['valid_loss']:.4g}",
        f"{row['seconds']:.1f} s",
    ]
    for task, m in row["metrics"].items():
        text = (
            f"{names.get(task, task)}: E {m.get('energy_mae', math.nan):.1f} meV/at"
            f" F {m.get('forces_mae', math.nan):.1f} meV/Å"
        )
        if "stress_mae" in m:
            text += f" S {m['stress_mae']:.3f} GPa"
        parts.append(text)
    return " | ".join(parts)


def _write_log(path: Path, history: list[dict]) -> None:
    rows = []
    for h in history:
        keys = ("epoch", "seconds", "lr", "train_loss", "reg", "valid_loss")
        row = {k: h[k] for k in keys}
        for task, m in h["metrics"].items():
            row.update({f"{task}.{k}": v for k, v in m.items()})
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def train(
    config: TrainConfig | str | Path | dict,
    *,
    restart: bool = False,
    stop_after: int | None = None,
    progress: Callable[[str], None] | None = print,
) -> TrainResult:
    """Train or fine-tune a model as the config says.

    Parameters
    ----------
    config : TrainConfig, path or dict
        The run (see :mod:`sevenomni_core.train.config`).
    restart : bool
        Start afresh even if the output folder holds a checkpoint.
    stop_after : int, optional
        Stop after this epoch (as an interruption would); running again
        continues.
    progress : callable, optional
        Receives one line per epoch with per-task validation metrics.

    Returns
    -------
    TrainResult
    """
    cfg = config if isinstance(config, TrainConfig) else load_train_config(config)
    device = resolve_device(cfg.device)
    out = cfg.output_dir
    last, best = out / "last.pth", out / "best.pth"
    setup: Setup = prepare(cfg)
    model = setup.model.to(device).train()
    if model.config.task_wise_shift:
        model.rescale_atomic_energy.shift.requires_grad_(True)
    frozen = _Frozen(model) if cfg.model.freeze_shared else None
    params = [p for p in model.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if cfg.optimizer.name == "adamw" else torch.optim.Adam
    opt = opt_cls(params, lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay)
    sizes = {t: len(s) for t, s in setup.train.items()}
    n_order = len(
        epoch_order(
            sizes, len(setup.dbs), cfg.dbs.fraction, cfg.task_balanced, cfg.seed, 0
        )
    )
    steps = math.ceil(n_order / cfg.batch_size)
    scheduler = _scheduler(opt, cfg, cfg.epochs * steps)
    ema = _Ema(model, cfg.optimizer.ema_decay) if cfg.optimizer.ema_decay else None
    history: list[dict] = []
    best_loss = math.inf
    start = 1
    key = config_hash(cfg)
    if last.exists() and not restart:
        state = torch.load(last, map_location="cpu", weights_only=False).get(STATE_KEY)
        if state is None or state["config_hash"] != key:
            raise TrainConfigError(
                f"output {out} holds a run with another config; choose another "
                "output folder or restart (--restart) to overwrite it"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.shadow = {k: v.to(device) for k, v in state["ema"].items()}
        history, best_loss, start = (
            state["history"],
            state["best_loss"],
            state["epoch"] + 1,
        )
        if progress and start > cfg.epochs:
            progress(f"{out} is complete ({cfg.epochs} epochs); nothing to do")
        elif progress:
            progress(f"resuming {out} after epoch {state['epoch']}")
    names = {BASE_TASK: next(iter(cfg.data))} if not model.tasks else {}
    pools = {**setup.train, "dbs": setup.dbs}
    reg_weight = cfg.regularization.selective_l2
    for epoch in range(start, cfg.epochs + 1):
        if stop_after is not None and epoch > stop_after:
            break
        tic = time.perf_counter()
        model.train()
        order = epoch_order(
            sizes, len(setup.dbs), cfg.dbs.fraction, cfg.task_balanced, cfg.seed, epoch
        )
        train_loss = reg_total = 0.0
        for chunk in _batches(order, cfg.batch_size):
            graph, labels = _to(
                *collate_samples([pools[src][k] for src, k in chunk]), device
            )
            pred = model(graph, compute_forces=True, compute_stress=True, training=True)
            total = loss_terms(pred, labels, graph, cfg.loss)["total"]
            reg = selective_l2(model) if reg_weight else total.new_zeros(())
            opt.zero_grad(set_to_none=True)
            (total + reg_weight * reg).backward()
            if cfg.optimizer.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.optimizer.grad_clip)
            opt.step()
            if frozen is not None:
                frozen.restore(model)
            scheduler.step()
            if ema is not None:
                ema.update(model)
            train_loss += float(total.detach()) / steps
            reg_total += float(reg.detach()) / steps
        model.eval()
        with ema.applied(model) if ema else contextlib.nullcontext():
            valid_loss, metrics = _evaluate(model, setup.validation, cfg, device)
        row = {
            "epoch": epoch,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": train_loss,
            "reg": reg_total,
            "valid_loss": valid_loss,
            "metrics": metrics,
            "seconds": time.perf_counter() - tic,
        }
        history.append(row)
        improved = not valid_loss >= best_loss  # NaN (no validation) counts
        if improved:
            best_loss = valid_loss
        state = {
            "config_hash": key,
            "epoch": epoch,
            # copies: the live tensors are overwritten by the EMA weights below
            "model": {
                k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            },
            "optimizer": opt.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": {k: v.cpu().clone() for k, v in ema.shadow.items()} if ema else None,
            "history": history,
            "best_loss": best_loss,
        }
        # the model files hold the weights to deploy (averaged, with EMA)
        with ema.applied(model) if ema else contextlib.nullcontext():
            if improved:
                save_checkpoint(model, best, setup.base_config, {"epoch": epoch})
            save_checkpoint(
                model, last, setup.base_config, {"epoch": epoch, STATE_KEY: state}
            )
        _write_log(out / "log.csv", history)
        if progress:
            progress(_format(epoch, cfg, row, names))
    return TrainResult(last=last, best=best, history=history)
