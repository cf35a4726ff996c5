"""Batched MD: many Langevin NVT runs against a loop of ASE Langevin with sevenn.

``--n`` small bulk cells (2-16 atoms), 300 K Langevin NVT, ``--steps`` steps
of 2 fs each, on the same checkpoint in one process (float32, CPU): ours all
at once with :func:`~sevenomni_core.batch.md`, the peer one run after the
other with ASE's ``Langevin`` and ``sevenn``'s calculator.  Both start from
the same momenta and draw from the same per-system random generators, so the
runs are the same dynamics; the mean temperatures are printed side by side.
Rounds alternate (loop, ours, loop, ...) and the ratio is the median.

    python benchmarks/md_speed.py [--n 64] [--steps 50] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from _structures import small_bulk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.steps, args.rounds = 3, 4, 1
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core.batch import md
    from sevenomni_core.model import load_model

    structures = small_bulk(args.n, seed=2)
    for i, atoms in enumerate(structures):
        MaxwellBoltzmannDistribution(
            atoms, temperature_K=300.0, rng=np.random.default_rng(1000 + i)
        )
    pot = load_model(args.model, device="cpu")
    ref = SevenNetCalculator(str(pot.path), device="cpu")
    warm = structures[0].copy()
    warm.calc = ref
    warm.get_potential_energy()  # first-call set-up is not timed
    n_atoms = sum(len(a) for a in structures)
    print(
        f"{args.n} Langevin NVT runs at 300 K ({n_atoms} atoms in all), "
        f"{args.steps} steps of 2 fs, model {args.model}, float32, CPU, "
        f"torch threads {args.threads}"
    )

    def loop():
        temps = []
        for i, atoms in enumerate(structures):
            a = atoms.copy()
            a.calc = ref
            dyn = Langevin(
                a,
                2.0 * units.fs,
                temperature_K=300.0,
                friction=0.01 / units.fs,
                fixcm=False,
                rng=np.random.default_rng(i),
            )
            dyn.run(args.steps)
            temps.append(a.get_temperature())
        return temps

    def ours():
        out = md(
            structures,
            model=pot,
            ensemble="nvt",
            temperature=300.0,
            timestep=2.0,
            steps=args.steps,
            interval=args.steps,
            friction=0.01,
            seed=list(range(args.n)),
        )
        return [r.temperature[-1] for r in out]

    t_loop, t_ours = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        temps_loop = loop()
        t_loop.append(time.perf_counter() - start)
        start = time.perf_counter()
        temps_ours = ours()
        t_ours.append(time.perf_counter() - start)
    lo, us = statistics.median(t_loop), statistics.median(t_ours)
    print(f"ASE Langevin + sevenn loop {lo:8.2f} s (median of {args.rounds})")
    print(f"ours batched               {us:8.2f} s (median of {args.rounds})")
    print(f"ratio                      {lo / us:8.2f}x")
    rate = args.steps / us
    print(
        f"ours: {args.n * rate:.1f} system-steps/s, {n_atoms * rate:.0f} atom-steps/s"
    )
    print(
        f"final temperature, mean over runs: loop {np.mean(temps_loop):.1f} K, "
        f"ours {np.mean(temps_ours):.1f} K"
    )


if __name__ == "__main__":
    main()
