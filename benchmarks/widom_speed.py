"""Widom insertion speed: batched energy-only passes against sevenn's calculator.

10,000 CO2 insertions in Mg-MOF-74 (7net-0, float32, CPU, one process):

- ours: :func:`~sevenomni_flows.properties.widom.insertions.insertion_energies` on every
  insertion that clears the hard-core overlap test (the overlapping ones
  cost no model call), many per forward pass, no force or stress pass;
- the peer: ``sevenn``'s ``SevenNetCalculator`` on the same checkpoint, one
  ``get_potential_energy`` per insertion (it computes forces and stress on
  every call), timed on ``--loop`` insertions and scaled to all of them,
  once for a naive loop (every insertion) and once for a loop that also
  skips the overlapping ones.

Also checks that both give the same energies on the timed insertions.

With ``--dispersion d3bj`` the model carries D3(BJ) (PBE parameters, the
default cutoffs) and the peer is ``SumCalculator(sevenn, simple-dftd3)``.
Ours evaluates D3 per rigid framework (:class:`RigidHostD3`); the D3 part
alone is also timed three ways on the same insertions: the rigid-host sum,
the full sum energy-only (``d3_packed(forces=False)``) and the full sum
with its gradient pass (what energy-only insertions paid before).

    python benchmarks/widom_speed.py [--n 10000] [--loop 200]
        [--dispersion d3bj] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase.build import molecule

MOF = Path(__file__).resolve().parents[1] / "workflows" / "structures" / "Mg-MOF-74.cif"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--loop", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dispersion", choices=["none", "d3bj"], default="none")
    parser.add_argument("--smoke", action="store_true", help="tiny, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.loop = 60, 5
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core.model import load_model
    from sevenomni_flows.adsorption.mofs import read_framework
    from sevenomni_flows.properties.widom.averages import insertions, overlapping
    from sevenomni_flows.properties.widom.insertions import insertion_energies

    host = read_framework(str(MOF))
    co2 = molecule("CO2")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    placed = insertions(host, co2, args.n, rng)
    over = overlapping(host, co2.numbers, placed)
    screen_s = time.perf_counter() - start
    pot = load_model("7net-0", device="cpu")
    d3 = args.dispersion != "none"
    if d3:
        from sevenomni_core.dispersion import with_dispersion

        pot = with_dispersion(pot, args.dispersion)
    start = time.perf_counter()
    ours = insertion_energies(pot, None, host, co2, placed[~over])
    ours_s = time.perf_counter() - start + screen_s
    free = np.flatnonzero(~over)
    calc = SevenNetCalculator("7net-0", device="cpu")
    if d3:
        from ase.calculators.mixing import SumCalculator
        from dftd3.ase import DFTD3

        calc = SumCalculator([calc, DFTD3(method="pbe", damping="d3bj")])
    atoms = host + co2
    atoms.calc = calc
    times, diffs = [], []
    for k in range(min(args.loop, len(free))):
        atoms.positions[len(host) :] = placed[free[k]]
        t0 = time.perf_counter()
        energy = atoms.get_potential_energy()
        times.append(time.perf_counter() - t0)
        diffs.append(abs(energy - ours[k]))
    per_call = statistics.median(times)
    naive = per_call * args.n
    screened = per_call * len(free) + screen_s
    print(
        f"{args.n} CO2 insertions in Mg-MOF-74 ({len(host)} atoms), 7net-0, cpu, "
        f"{torch.get_num_threads()} thread(s); {over.mean():.1%} overlapping"
    )
    print(f"ours (batched, energy only):     {ours_s:.1f} s ({args.n / ours_s:.0f}/s)")
    print(
        f"sevenn loop, median per call:    {per_call * 1e3:.1f} ms ({len(times)} calls)"
    )
    print(
        f"sevenn naive loop (all), scaled: {naive:.1f} s -> ratio {naive / ours_s:.1f}x"
    )
    print(
        f"sevenn loop skipping overlaps:   {screened:.1f} s -> ratio "
        f"{screened / ours_s:.1f}x"
    )
    print(f"largest energy difference on the timed insertions: {max(diffs):.2e} eV")
    if d3:
        d3_parts(pot, host, co2, placed[free[: args.loop]])


def d3_parts(pot, host, guest, placed) -> None:
    """Time the D3 term alone three ways on ``placed`` (interleaved, medians)."""
    from sevenomni_core.dispersion import RigidHostD3, evaluate_d3

    config = pot.dispersion
    params = config.parameters(None)
    n = len(placed)
    combined = [host + guest for _ in range(n)]
    for atoms, positions in zip(combined, placed, strict=True):
        atoms.positions[len(host) :] = positions

    def rigid():
        return RigidHostD3(host, guest.numbers, config, params).energies(placed)

    ways = {
        "rigid host (setup included)": rigid,
        "full sum, energy only": lambda: evaluate_d3(combined, config, forces=False),
        "full sum with gradient": lambda: evaluate_d3(combined, config),
    }
    times = {name: [] for name in ways}
    for _ in range(3):
        for name, way in ways.items():
            t0 = time.perf_counter()
            way()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["rigid host (setup included)"])
    print(f"D3 term alone on {n} insertions (float64, medians of 3, interleaved):")
    for name, t in times.items():
        t = statistics.median(t)
        print(f"  {name:28s} {t / n * 1e3:8.2f} ms/insertion, ratio {t / base:.1f}x")
    full = np.array([r.energy[0] for r in evaluate_d3(combined, config, forces=False)])
    print(f"  largest rigid - full difference: {np.abs(rigid() - full).max():.1e} eV")


if __name__ == "__main__":
    main()
