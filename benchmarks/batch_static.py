"""(a) Static energy+forces+stress of many small bulk cells: batched vs a sevenn loop.

Both run in this process on the same checkpoint and structures (2-16 atoms,
or 200-500 atoms with ``--large``).  Prints wall times (median of repeats),
structures/s and atoms/s, and the ratio loop / batched, plus peak memory.
``--backend`` picks our kernels (the sevenn loop is always its e3nn default).

    python benchmarks/batch_static.py [--n 500] [--model 7net-0] [--device cpu]
        [--backend e3nn|cueq] [--large]
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


def large(atoms, low=200, high=500):
    """``atoms`` repeated along its shortest cell vectors into 200-500 atoms."""
    reps = [1, 1, 1]
    while len(atoms) * np.prod(reps) < low:
        lengths = atoms.cell.lengths() * reps
        axis = int(np.argmin(lengths))
        if len(atoms) * np.prod(reps) * (reps[axis] + 1) / reps[axis] > high:
            axis = int(np.argsort(lengths)[1])
        reps[axis] += 1
    return atoms.repeat(reps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument(
        "--backend", default="e3nn", help="ours: e3nn, cueq, or both as e3nn,cueq"
    )
    parser.add_argument(
        "--large", action="store_true", help="cells of 200-500 atoms (supercells)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core.batch import predict
    from sevenomni_core.model import load_model

    structures = small_bulk(args.n)
    if args.large:
        structures = [large(a) for a in structures]
    backends = args.backend.split(",")
    pots = {b: load_model(args.model, device=args.device, backend=b) for b in backends}
    ref = SevenNetCalculator(str(pots[backends[0]].path), device=args.device)
    bs = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    for pot in pots.values():
        predict(structures[:8], model=pot)  # warm-up (and kernel build)
    natoms = sum(len(a) for a in structures)
    print(
        f"{args.n} structures ({natoms} atoms), model {args.model}, device "
        f"{args.device}, torch threads {torch.get_num_threads()}"
    )
    cuda = args.device.startswith("cuda")

    def loop():
        out = []
        for atoms in structures:
            a = atoms.copy()
            a.calc = ref
            out.append((a.get_potential_energy(), a.get_forces(), a.get_stress()))
        return out

    def timed(run):
        t0 = time.perf_counter()
        out = run()
        if cuda:
            torch.cuda.synchronize()
        return out, time.perf_counter() - t0

    # interleaved repeats, so the machine's noise is shared
    times = {"loop": [], **{b: [] for b in backends}}
    outs = {}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.repeats):
        outs["loop"], t = timed(loop)
        times["loop"].append(t)
        for b, pot in pots.items():
            outs[b], t = timed(
                lambda pot=pot: predict(structures, model=pot, batch_size=bs)
            )
            times[b].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        who = "sevenn loop" if name == "loop" else f"ours {name}"
        print(
            f"{who:<12} {t:8.2f} s  ({t / args.n * 1e3:.1f} ms/structure, "
            f"{args.n / t:.1f} structures/s, {natoms / t:.0f} atoms/s)"
        )
    for b in backends:
        ref_out = outs["loop"]
        de = max(
            abs(o.energy - r[0]) / len(a)
            for o, r, a in zip(outs[b], ref_out, structures, strict=True)
        )
        df = max(
            np.abs(o.forces - r[1]).max() for o, r in zip(outs[b], ref_out, strict=True)
        )
        print(
            f"ratio {b:<6} {med['loop'] / med[b]:8.2f}x   "
            f"(max |dE| {de:.1e} eV/atom, max |dF| {df:.1e} eV/Å)"
        )
    if "cueq" in med and "e3nn" in med:
        print(f"cueq over e3nn {med['e3nn'] / med['cueq']:6.2f}x")
    if cuda:
        print(
            f"peak GPU memory (c): {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak process RSS (c): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
