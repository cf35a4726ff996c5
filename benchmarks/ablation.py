"""A miniature of SevenNet-Omni's training ablation, on generated data.

Two domains, labelled offline by 7net-mf-0's two tasks (see
``_training_data.py``): ``pbe`` has bulk cells and slabs, ``r2scan`` has
bulk cells only.  Four small models are trained from scratch, each the same
way except for the two ingredients of the recipe:

- plain multi-task training;
- with selective L2 on the task weights of the interaction blocks;
- with a domain-bridging set (a few slabs labelled under r2scan);
- with both.

The out-of-domain error is that of the r2scan task on slabs (a family it
saw only under pbe, except for the DBS); in-domain errors are printed too.

Usage::

    python benchmarks/ablation.py            # docs/training.md table (~15 min)
    python benchmarks/ablation.py --smoke    # a minute: checks the script runs
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _training_data import bulk_cells, label, slabs, write_domain

from sevenomni_core import load_model
from sevenomni_core.batch import predict
from sevenomni_core.train import train

ARCH = {
    "cutoff": 4.5,
    "channel": 16,
    "lmax": 1,
    "num_convolution_layer": 2,
    "weight_nn_hidden_neurons": [32],
}


def _errors(model_path: Path, frames, task: str) -> tuple[float, float]:
    """Energy (meV/atom) and force (meV/Å) MAE of a checkpoint's task."""
    pot = load_model(model_path, cache=False)
    preds = predict(frames, model=pot, task=task, device="cpu")
    de = [
        abs(p.energy - a.get_potential_energy()) / len(a)
        for p, a in zip(preds, frames, strict=True)
    ]
    df = np.concatenate(
        [
            np.abs(p.forces - a.get_forces()).ravel()
            for p, a in zip(preds, frames, strict=True)
        ]
    )
    return 1000 * float(np.mean(de)), 1000 * float(np.mean(df))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--l2", type=float, default=0.01, help="selective L2 weight")
    parser.add_argument("--seeds", type=int, default=2, help="models per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--keep", action="store_true", help="keep data and models")
    args = parser.parse_args()
    # one thread: on a shared machine, oversubscribed OpenMP threads spin and
    # slow small models by an order of magnitude
    torch.set_num_threads(args.threads)
    n = 12 if args.smoke else 120
    epochs = args.epochs or (2 if args.smoke else 40)
    seeds = 1 if args.smoke else args.seeds
    work = Path(tempfile.mkdtemp(prefix="sevenomni-ablation-"))
    t0 = time.perf_counter()
    files = {
        "pbe_bulk": write_domain(work / "pbe_bulk.xyz", bulk_cells(n, 11), "pbe"),
        "pbe_slabs": write_domain(work / "pbe_slabs.xyz", slabs(n, 12), "pbe"),
        "r2scan_bulk": write_domain(work / "r2s_bulk.xyz", bulk_cells(n, 13), "r2scan"),
        "dbs": write_domain(work / "dbs.xyz", slabs(max(2, n // 30), 14), "r2scan"),
    }
    tests = {
        "r2scan slabs (OOD)": (label(slabs(n // 3, 21), "r2scan"), "r2scan"),
        "r2scan bulk": (label(bulk_cells(n // 3, 22), "r2scan"), "r2scan"),
        "pbe slabs": (label(slabs(n // 3, 23), "pbe"), "pbe"),
    }
    n_train = 3 * n + max(2, n // 30)
    print(
        f"data: {n} pbe bulk, {n} pbe slabs, {n} r2scan bulk, "
        f"{max(2, n // 30)} r2scan slabs as DBS ({100 * max(2, n // 30) / n_train:.1f}%"
        f" of {n_train}); labelled in {time.perf_counter() - t0:.0f} s"
    )
    variants = {
        "plain multi-task": (0.0, False),
        "+ selective L2": (args.l2, False),
        "+ DBS": (0.0, True),
        "+ selective L2 + DBS": (args.l2, True),
    }
    rows = []
    for name, (l2, dbs) in variants.items():
        runs = []
        for seed in range(seeds):
            config = {
                "seed": seed,
                "output": str(
                    work / f"{name.replace(' ', '_').replace('+', '')}-{seed}"
                ),
                "epochs": epochs,
                "batch_size": 8,
                "validation_fraction": 0.05,
                "model": {"architecture": ARCH},
                "data": {
                    "pbe": {"train": [str(files["pbe_bulk"]), str(files["pbe_slabs"])]},
                    "r2scan": {"train": [str(files["r2scan_bulk"])]},
                },
                "dbs": {"files": [{"path": str(files["dbs"]), "task": "r2scan"}]}
                if dbs
                else {},
                "loss": {"energy_weight": 10.0, "force_weight": 1.0},
                "regularization": {"selective_l2": l2},
                "optimizer": {"lr": 0.01, "schedule": "cosine", "ema_decay": 0.99},
            }
            start = time.perf_counter()
            result = train(config, progress=None)
            minutes = (time.perf_counter() - start) / 60
            errs = {
                k: _errors(result.last, frames, task)
                for k, (frames, task) in tests.items()
            }
            runs.append(errs)
            print(
                f"{name} (seed {seed}): {minutes:.1f} min; "
                + "; ".join(
                    f"{k} E {e:.1f} meV/atom F {f:.0f} meV/Å"
                    for k, (e, f) in errs.items()
                ),
                flush=True,
            )
        mean = {
            k: tuple(float(np.mean([r[k][i] for r in runs])) for i in (0, 1))
            for k in tests
        }
        rows.append((name, mean, runs))
    print()
    heads = list(tests)
    ood = heads[0]
    print(
        "| model | "
        + " | ".join(f"{h}: E (meV/atom) / F (meV/Å)" for h in heads)
        + f" | {ood}: E range over seeds |"
    )
    print("|---|" + "---|" * (len(heads) + 1))
    for name, errs, runs in rows:
        cells = " | ".join(f"{errs[h][0]:.1f} / {errs[h][1]:.0f}" for h in heads)
        spread = [r[ood][0] for r in runs]
        print(f"| {name} | {cells} | {min(spread):.0f}–{max(spread):.0f} |")
    print(f"(mean of {seeds} seeds, {epochs} epochs each)")
    if args.keep:
        print(f"data and models kept in {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
