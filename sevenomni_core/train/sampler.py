"""Which samples each epoch visits: task-balanced, with the DBS share.

The order depends only on the seed and the epoch number, so a resumed run
visits the same samples as an uninterrupted one.
"""

from __future__ import annotations

import torch

__all__ = ["epoch_order"]


def _draw(n_items: int, count: int, gen: torch.Generator) -> list[int]:
    """``count`` indices of ``n_items``: whole permutations, then a partial one."""
    out: list[int] = []
    while len(out) < count:
        out += torch.randperm(n_items, generator=gen).tolist()
    return out[:count]


def epoch_order(
    sizes: dict[str, int],
    n_dbs: int,
    dbs_fraction: float | None,
    balanced: bool,
    seed: int,
    epoch: int,
) -> list[tuple[str, int]]:
    """The ``(source, index)`` pairs of one epoch, shuffled.

    Parameters
    ----------
    sizes : dict
        Training samples per task.
    n_dbs : int
        Domain-bridging samples (source ``"dbs"``).
    dbs_fraction : float or None
        Share of the epoch drawn from the DBS; None visits each once.
    balanced : bool
        Give each task the same number of draws (small tasks are repeated,
        large ones subsampled); else visit every sample once.
    seed, epoch : int
        Determine the order.
    """
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    total = sum(sizes.values())
    order: list[tuple[str, int]] = []
    for task, n in sizes.items():
        if n == 0:
            continue
        count = round(total / len(sizes)) if balanced else n
        order += [(task, k) for k in _draw(n, count, gen)]
    if n_dbs:
        if dbs_fraction is None:
            count = n_dbs
        else:
            count = round(dbs_fraction * total / (1.0 - dbs_fraction))
        order += [("dbs", k) for k in _draw(n_dbs, count, gen)]
    perm = torch.randperm(len(order), generator=gen).tolist()
    return [order[k] for k in perm]
