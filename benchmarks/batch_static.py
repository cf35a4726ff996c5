"""(a) Static energy+forces+stress of many small bulk cells: batched vs a sevenn loop.

Both run in this process on the same checkpoint and structures (2-16 atoms).
Prints wall times (median of repeats) and the ratio loop / batched, plus peak
memory per batch (benchmark c).

    python benchmarks/batch_static.py [--n 500] [--model 7net-0] [--device cpu]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings

import numpy as np
import torch
from _structures import small_bulk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", default="auto")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core.batch import predict
    from sevenomni_core.model import load_model

    structures = small_bulk(args.n)
    pot = load_model(args.model, device=args.device)
    ref = SevenNetCalculator(str(pot.path), device=args.device)
    bs = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    predict(structures[:8], model=pot)  # warm-up
    natoms = sum(len(a) for a in structures)
    print(
        f"{args.n} structures ({natoms} atoms), model {args.model}, device "
        f"{args.device}, torch threads {torch.get_num_threads()}"
    )

    def loop():
        out = []
        for atoms in structures:
            a = atoms.copy()
            a.calc = ref
            out.append((a.get_potential_energy(), a.get_forces(), a.get_stress()))
        return out

    def batched():
        return predict(structures, model=pot, batch_size=bs)

    t_loop, t_ours = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ref_out = loop()
        t_loop.append(time.perf_counter() - t0)
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        ours = batched()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t_ours.append(time.perf_counter() - t0)
    de = max(
        abs(o.energy - r[0]) / len(a)
        for o, r, a in zip(ours, ref_out, structures, strict=True)
    )
    df = max(np.abs(o.forces - r[1]).max() for o, r in zip(ours, ref_out, strict=True))
    a, b = statistics.median(t_loop), statistics.median(t_ours)
    print(f"sevenn loop  {a:8.2f} s  ({a / args.n * 1e3:.1f} ms/structure)")
    print(f"ours batched {b:8.2f} s  ({b / args.n * 1e3:.1f} ms/structure)")
    print(
        f"ratio        {a / b:8.2f}x   "
        f"(max |dE| {de:.1e} eV/atom, max |dF| {df:.1e} eV/Å)"
    )
    if args.device.startswith("cuda"):
        print(
            f"peak GPU memory (c): {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak process RSS (c): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
