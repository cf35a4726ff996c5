"""(b) Many relaxations: batched FIRE against ASE FIRE loops with sevenn's calculator.

Positions-and-cell relaxations (FrechetCellFilter) of rattled, strained small
bulk cells, in one process on the same checkpoint.  Prints wall times, the
ratio loop / batched, and how the final energies compare.

    python benchmarks/batch_relax.py [--n 100] [--model 7net-0] [--fmax 0.05]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _structures import small_bulk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="e3nn")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=300)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core.batch import relax
    from sevenomni_core.model import load_model

    structures = small_bulk(args.n, seed=1)
    pot = load_model(args.model, device=args.device, backend=args.backend)
    ref = SevenNetCalculator(str(pot.path), device=args.device)
    print(
        f"{args.n} cell relaxations, model {args.model}, device {args.device}, "
        f"backend {pot.backend}, "
        f"fmax {args.fmax}, torch threads {torch.get_num_threads()}"
    )

    t0 = time.perf_counter()
    ase_out = []
    for atoms in structures:
        a = atoms.copy()
        a.calc = ref
        opt = FIRE(FrechetCellFilter(a), logfile=None)
        ok = opt.run(fmax=args.fmax, steps=args.max_steps)
        ase_out.append((a.get_potential_energy() / len(a), bool(ok), opt.nsteps))
    t_loop = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours = relax(
        structures, model=pot, fmax=args.fmax, max_steps=args.max_steps, relax_cell=True
    )
    t_ours = time.perf_counter() - t0

    both = [
        (o.energy / len(a), r[0])
        for o, r, a in zip(ours, ase_out, structures, strict=True)
        if o.converged and r[1]
    ]
    de = np.array([abs(x - y) for x, y in both])
    print(
        f"ASE FIRE + sevenn loop {t_loop:8.1f} s "
        f"({sum(r[2] for r in ase_out)} steps, {sum(r[1] for r in ase_out)} converged)"
    )
    print(
        f"ours batched           {t_ours:8.1f} s "
        f"({sum(o.steps for o in ours)} steps, "
        f"{sum(o.converged for o in ours)} converged)"
    )
    print(f"ratio                  {t_loop / t_ours:8.2f}x")
    if len(both):
        print(
            f"final energy, both converged ({len(both)}): median |dE| "
            f"{np.median(de) * 1e3:.3f} meV/atom, max {de.max() * 1e3:.3f} meV/atom"
        )
    else:
        print("final energy: no structure converged in both runs")


if __name__ == "__main__":
    main()
