"""Batched cell relaxations: ours against torch-sim's batched FIRE with sevenn's model.

Fifteen held-out small bulk cells (rattled and strained, seed 32, used by no
test), 7net-0 in float32, relaxed with positions and cell to the same
``fmax`` (eV/Å, over atoms and cell rows) within the same step limit:
``sevenomni_core.batch.relax(..., relax_cell=True)`` against torch-sim's
``frechet_cell_fire`` (ASE-flavoured FIRE with the Fréchet cell filter)
driven by ``torch_sim.optimize`` on ``SevenNetModel``.  A static row times
one batched energy/forces/stress evaluation of the same cells (ours from
the structures, graphs included; torch-sim's model call on a prepared
state).  Rounds are interleaved in one process (ours, then torch-sim), and
medians are printed with their ratios for each thread count.

Step counts per structure come from an untimed pass on each side that
checks convergence after every step; torch-sim's timed run uses its own
``optimize`` loop, which checks every ``--swap-every`` steps (its default 5).

    python benchmarks/relax_torch_sim.py [--threads 1,2] [--rounds 3]
        [--fmax 0.05] [--max-steps 300] [--swap-every 5] [--smoke]

torch-sim is not a dependency of sevenomni (``pip install torch-sim-atomistic``;
written against 0.3.0).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from _structures import small_bulk


def torch_sim_side(path: str, structures, fmax: float, swap_every: int):
    """Callables for torch-sim: a timed relaxation, a step counter, a static call."""
    import sevenn._keys
    import torch_sim as ts
    import torch_sim.models.sevennet as wrapper
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.calculator import SevenNetCalculator
    from torch_geometric.loader.dataloader import Collater

    # torch-sim 0.3.0's wrapper imports ``torch_script_type``, which sevenn
    # 0.13 no longer has; that one failed import leaves the names below
    # unbound, so they are supplied here as sevenn defined them
    wrapper.key, wrapper.AtomGraphData, wrapper.Collater = (
        sevenn._keys,
        AtomGraphData,
        Collater,
    )
    wrapper.torch_script_type = torch.jit.RecursiveScriptModule

    sevenn = SevenNetCalculator(path, device="cpu").model
    model = wrapper.SevenNetModel(model=sevenn, device="cpu", dtype=torch.float32)
    converged = ts.generate_force_convergence_fn(force_tol=fmax)

    def run(max_steps: int) -> np.ndarray:
        out = ts.optimize(
            system=structures,
            model=model,
            optimizer=ts.frechet_cell_fire,
            convergence_fn=converged,
            max_steps=max_steps,
            steps_between_swaps=swap_every,
        )
        return out.energy.detach().double().numpy()

    def count(max_steps: int) -> tuple[list[int | None], np.ndarray]:
        """Steps each structure needs (None: not within max_steps), and its
        energy when it first converged (or at max_steps)."""
        init, update = ts.frechet_cell_fire(model=model)
        state = init(ts.initialize_state(structures, model.device, model.dtype))
        steps: list[int | None] = [None] * len(structures)
        energy = np.full(len(structures), np.nan)
        for k in range(max_steps + 1):
            done = converged(state).tolist()
            e = state.energy.detach().double().numpy()
            for i, d in enumerate(done):
                if d and steps[i] is None:
                    steps[i], energy[i] = k, e[i]
            if all(s is not None for s in steps) or k == max_steps:
                break
            state = update(state)
        last = [i for i, s in enumerate(steps) if s is None]
        energy[last] = state.energy.detach().double().numpy()[last]
        return steps, energy

    state = ts.initialize_state(structures, model.device, model.dtype)
    return run, count, lambda: model(state)


#: Where a batched step's time goes: (bucket, module, attribute), each timed
#: where ``relax`` finds it; the rest of a step is the loop itself
#: (convergence and divergence checks, geometry, Python).
PARTS = [
    ("model forward+backward", "sevenomni_core.model.potential:Potential", "evaluate"),
    ("batching, host conversions", "sevenomni_core.batch.relax", "evaluate_graphs"),
    ("neighbour lists, graphs", "sevenomni_core.batch.relax", "atoms_to_graph"),
    ("neighbour lists, graphs", "sevenomni_core.batch.relax", "refresh_graph"),
    ("optimiser", "sevenomni_core.batch.optimizers:Fire", "step"),
    ("cell filter", "sevenomni_core.batch.relax", "cell_force"),
    ("cell filter", "sevenomni_core.batch.relax", "deformation"),
    ("guards", "sevenomni_core.batch.relax", "_too_close"),
    ("guards", "sevenomni_core.batch.relax", "_volume_net"),
]


def breakdown(run) -> tuple[dict[str, float], int]:
    """Seconds per bucket of :data:`PARTS` over one ``run()``, and its steps."""
    import importlib
    from unittest import mock

    spent: dict[str, float] = {"total": 0.0}
    calls = {"steps": 0}
    patches = []
    for bucket, where, name in PARTS:
        module, _, cls = where.partition(":")
        owner = importlib.import_module(module)
        owner = getattr(owner, cls) if cls else owner
        if not hasattr(owner, name):
            continue
        inner = getattr(owner, name)

        def timed(*a, _inner=inner, _bucket=bucket, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _inner(*a, **k)
            finally:
                dt = time.perf_counter() - t0
                spent[_bucket] = spent.get(_bucket, 0.0) + dt
                if _name == "evaluate_graphs":
                    calls["steps"] += 1

        patches.append(mock.patch.object(owner, name, timed))
    for p in patches:
        p.start()
    try:
        t0 = time.perf_counter()
        run()
        spent["total"] = time.perf_counter() - t0
    finally:
        for p in patches:
            p.stop()
    batching = "batching, host conversions"
    spent[batching] -= spent["model forward+backward"]  # nested in it
    spent["loop: checks, geometry, Python"] = spent["total"] - sum(
        v for k, v in spent.items() if k != "total"
    )
    return spent, calls["steps"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--threads", default="1,2", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--swap-every", type=int, default=5)
    parser.add_argument(
        "--breakdown", action="store_true", help="also time our step's parts"
    )
    parser.add_argument("--smoke", action="store_true", help="2 cells, 5 steps")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.smoke:
        args.n, args.rounds, args.max_steps, args.threads = 2, 1, 5, "1"
        args.breakdown = True
    warnings.filterwarnings("ignore")
    from sevenomni_core.batch import predict, relax
    from sevenomni_core.model import load_model

    structures = small_bulk(args.n, seed=32)
    pot = load_model(args.model, device="cpu", backend="e3nn")
    ts_run, ts_count, ts_static = torch_sim_side(
        str(pot.path), structures, args.fmax, args.swap_every
    )

    def ours():
        return relax(
            structures,
            model=pot,
            fmax=args.fmax,
            max_steps=args.max_steps,
            relax_cell=True,
        )

    natoms = [len(a) for a in structures]
    print(
        f"{args.n} cells ({sum(natoms)} atoms, {min(natoms)}-{max(natoms)} each), "
        f"model {args.model}, float32, fmax {args.fmax} eV/Å, max steps "
        f"{args.max_steps}, torch-sim checks every {args.swap_every} steps"
    )
    mine = ours()  # warm-up, and our step counts
    theirs, e_theirs = ts_count(args.max_steps)
    print("| cell | atoms | steps ours | steps torch-sim | dE (meV/atom) |")
    print("|---|---|---|---|---|")
    de = []
    for k, (a, o, s) in enumerate(zip(structures, mine, theirs, strict=True)):
        d = (o.energy - e_theirs[k]) / len(a) * 1e3 if o.energy is not None else None
        if o.converged and s is not None:
            de.append(abs(d))
        print(
            f"| {a.get_chemical_formula()} | {len(a)} | "
            f"{o.steps if o.converged else f'{o.steps} (not converged)'} | "
            f"{s if s is not None else 'not converged'} | "
            f"{'n/a' if d is None else f'{d:+.3f}'} |"
        )
    print(
        f"converged: ours {sum(o.converged for o in mine)}/{args.n}, torch-sim "
        f"{sum(s is not None for s in theirs)}/{args.n}; total steps ours "
        f"{sum(o.steps for o in mine)}, torch-sim "
        f"{sum(s if s is not None else args.max_steps for s in theirs)}"
    )
    if de:
        print(
            f"final energy, both converged ({len(de)}): max |dE| "
            f"{max(de):.3f} meV/atom, median {statistics.median(de):.3f}"
        )

    if args.breakdown:
        spent, steps = breakdown(ours)
        print(f"our batched step, {steps} model calls (ms per call, share):")
        for k, v in spent.items():
            print(f"  {k:<32} {v / steps * 1e3:8.2f} ms  {v / spent['total']:6.1%}")

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        rows = {"relax ours": [], "relax torch-sim": []}
        rows |= {"static ours": [], "static torch-sim": []}
        for _ in range(args.rounds):  # interleaved: the machine's noise is shared
            rows["static ours"].append(timed(lambda: predict(structures, model=pot)))
            rows["static torch-sim"].append(timed(ts_static))
            rows["relax ours"].append(timed(ours))
            rows["relax torch-sim"].append(timed(lambda: ts_run(args.max_steps)))
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"torch threads {threads}, median of {args.rounds} rounds:")
        for what in ("static", "relax"):
            a, b = med[f"{what} ours"], med[f"{what} torch-sim"]
            print(
                f"  {what:<6} ours {a * 1e3:9.1f} ms  torch-sim {b * 1e3:9.1f} ms  "
                f"ratio {b / a:6.2f}x"
            )


if __name__ == "__main__":
    main()
