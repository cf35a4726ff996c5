"""The training loss and validation metrics.

Energies enter per atom (eV/atom), forces per component (eV/Å) and stress
per component in GPa, so that the default weights are of one order.  Frames
without a stress label do not enter the stress term.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch.nn import functional as F

from .. import _keys as K
from .config import LossSection

__all__ = ["EV_A3_TO_GPA", "Metrics", "loss_terms"]

EV_A3_TO_GPA = 160.21766208


def _residuals(pred: dict, labels: dict, graph: dict) -> dict[str, torch.Tensor]:
    n_atoms = graph[K.NUM_ATOMS].to(pred[K.ENERGY].dtype)
    out = {
        "energy": (pred[K.ENERGY] - labels[K.ENERGY].to(n_atoms.dtype)) / n_atoms,
        "forces": (pred[K.FORCES] - labels[K.FORCES].to(n_atoms.dtype)).reshape(-1),
    }
    if K.STRESS in pred:
        has = labels["has_stress"]
        diff = pred[K.STRESS] - labels[K.STRESS].to(n_atoms.dtype)
        out["stress"] = (diff[has] * EV_A3_TO_GPA).reshape(-1)
    return out


def _penalty(r: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    if r.numel() == 0:
        return r.new_zeros(())
    if kind == "mae":
        return r.abs().mean()
    if kind == "huber":
        return F.huber_loss(r, torch.zeros_like(r), delta=delta)
    return (r**2).mean()


def loss_terms(
    pred: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    graph: dict[str, torch.Tensor],
    cfg: LossSection,
) -> dict[str, torch.Tensor]:
    """Weighted loss terms and their sum (key ``"total"``)."""
    res = _residuals(pred, labels, graph)
    weights = {
        "energy": cfg.energy_weight,
        "forces": cfg.force_weight,
        "stress": cfg.stress_weight,
    }
    terms = {
        name: weights[name] * _penalty(r, cfg.kind, cfg.huber_delta)
        for name, r in res.items()
    }
    terms["total"] = sum(terms.values())
    return terms


class Metrics:
    """Per-task MAE and RMSE of energy/atom, forces and stress.

    Units: meV/atom, meV/Å and GPa.
    """

    def __init__(self, tasks: list[str]):
        self.tasks = tasks
        self._sums: dict[tuple[str, str], list[float]] = defaultdict(
            lambda: [0.0, 0.0, 0]
        )

    def add(self, pred: dict, labels: dict, graph: dict) -> None:
        """Accumulate one batch (its structures may mix tasks)."""
        res = _residuals(pred, labels, graph)
        task_graph = graph[K.TASK]
        task_atom = task_graph[graph[K.BATCH]]
        per = {
            "energy": (res["energy"] * 1000, task_graph),
            "forces": (res["forces"] * 1000, task_atom.repeat_interleave(3)),
        }
        if "stress" in res:
            has = labels["has_stress"]
            per["stress"] = (res["stress"], task_graph[has].repeat_interleave(6))
        for name, (r, task) in per.items():
            r = r.detach().double()
            for k, t in enumerate(self.tasks):
                sel = r[task == k]
                if sel.numel():
                    acc = self._sums[(t, name)]
                    acc[0] += float(sel.abs().sum())
                    acc[1] += float((sel**2).sum())
                    acc[2] += sel.numel()

    def summary(self) -> dict[str, dict[str, float]]:
        """``{task: {"energy_mae": ..., "energy_rmse": ..., ...}}``."""
        out: dict[str, dict[str, float]] = {}
        for (task, name), (abs_sum, sq_sum, n) in self._sums.items():
            row = out.setdefault(task, {})
            row[f"{name}_mae"] = abs_sum / n
            row[f"{name}_rmse"] = (sq_sum / n) ** 0.5
        return out
