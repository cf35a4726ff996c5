"""Energy + forces + stress per call: SevenOmniCalculator against sevenn's calculator.

Both calculators run in this process on the same checkpoint, interleaved, on
the same structures; each call follows a small displacement so nothing is
cached.  Prints medians and the ratio sevenn / ours (> 1 means we are faster).

    python benchmarks/calculator_speed.py [--model 7net-0] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from ase.build import bulk, fcc111, molecule
from ase.build.surface import add_adsorbate


def structures():
    si = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (4, 4, 4)
    slab = fcc111("Pt", size=(4, 4, 4), vacuum=8.0)
    add_adsorbate(slab, molecule("CO")[::-1], 1.9, "ontop")
    out = {"Si (64)": si, "Cu fcc (256)": cu, f"Pt(111)+CO ({len(slab)})": slab}
    for i, a in enumerate(out.values()):
        a.rattle(0.02, seed=i)
    return out


def time_calls(calc, atoms, repeats):
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.get_stress()  # warm-up
    times = []
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        atoms.positions += rng.normal(0, 1e-3, atoms.positions.shape)
        t0 = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--task", default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core import SevenOmniCalculator
    from sevenomni_core.model.registry import resolve_checkpoint

    _, path = resolve_checkpoint(args.model)
    ours = SevenOmniCalculator(str(path), task=args.task, device=args.device)
    ref = SevenNetCalculator(str(path), modal=ours.task, device=args.device)
    print(
        f"model {args.model} ({path.name}), device {args.device}, "
        f"torch threads {torch.get_num_threads()}, repeats {args.repeats}"
    )
    print(f"{'structure':<22}{'sevenn s':>10}{'ours s':>10}{'ratio':>8}")
    for name, atoms in structures().items():
        # interleave to share the machine's noise
        t_ref, t_ours = [], []
        for _ in range(3):
            t_ref.append(time_calls(ref, atoms, args.repeats))
            t_ours.append(time_calls(ours, atoms, args.repeats))
        a, b = statistics.median(t_ref), statistics.median(t_ours)
        print(f"{name:<22}{a:>10.4f}{b:>10.4f}{a / b:>8.2f}x")


if __name__ == "__main__":
    main()
