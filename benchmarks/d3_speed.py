"""D3 energy + forces + stress per call: ours against simple-dftd3, on the CPU.

Mg-MOF-74 + CO2 (165 atoms) and a Pt(111) slab (256 atoms), D3(BJ), PBE
parameters, simple-dftd3's cutoffs (60 bohr pairs, 40 bohr coordination
numbers), no three-body term; a 7net-0 model (float64 and float32) with
D3 attached, of which only the D3 term is timed.  In one process,
interleaved rounds (the order reversed every other round), medians:

- ours, as called: ``d3_graphs`` as ``predict`` and the calculator call it
  for energy, forces and stress (per-atom energies not computed: predict
  defers them to their first read, the calculator computes them only when
  ASE asks for ``energies``);
- ours, with per-atom E: the same call with per-atom energies (what both
  asked for on every call before; simple-dftd3's pairwise pass beside the
  gradient);
- simple-dftd3: its Python API, a new ``DispersionModel`` per call and
  ``get_dispersion(..., grad=True)`` (energy, gradient, virial), as its
  documentation and our parity tests call it;
- simple-dftd3, model kept: one ``DispersionModel`` moved with ``update()``
  (as its own ASE calculator does with ``cache_api=True``).

Ratios are simple-dftd3's time over ours (> 1: ours is faster).
simple-dftd3's wheel is built without OpenMP and computes in float64: its
time does not depend on the thread count (which sets torch's) or the dtype.
``--clock cpu`` times the process's CPU time instead of the wall clock:
steadier on a loaded machine (every way timed runs on one thread).

    python benchmarks/d3_speed.py [--rounds 15] [--threads 1 2] [--clock wall]
        [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import fcc111, molecule
from ase.io import read

MOF = Path(__file__).resolve().parents[1] / "workflows" / "structures" / "Mg-MOF-74.cif"
WAYS = (
    "ours, as called",
    "ours, with per-atom E",
    "simple-dftd3",
    "simple-dftd3, model kept",
)


def systems() -> dict[str, Atoms]:
    mof = read(MOF)
    co2 = molecule("CO2")  # along c, on a channel axis
    co2.positions += np.array([1 / 3, 2 / 3, 1 / 2]) @ mof.cell.array
    slab = fcc111("Pt", (8, 8, 4), vacuum=8.0)
    slab.rattle(0.02, seed=3)
    return {"Mg-MOF-74+CO2 (165)": mof + co2, "Pt(111) slab (256)": slab}


def ways(atoms: Atoms, dtype: str) -> dict:
    """The callables timed, each returning the D3 energy (eV)."""
    from ase.units import Bohr, Hartree
    from dftd3.interface import DispersionModel, RationalDampingParam

    from sevenomni_core.data import atoms_to_graph
    from sevenomni_core.dispersion import d3_graphs, with_dispersion
    from sevenomni_core.model import load_model

    pot = with_dispersion(load_model("7net-0", device="cpu", dtype=dtype), "d3bj")
    config = pot.dispersion
    graph = atoms_to_graph(atoms, pot.cutoff, pot.network.z_to_index)

    def ours(energies: bool):
        def call():
            res = d3_graphs(pot, [graph], stress=True, energies=energies)
            assert (res.energies is not None) == energies
            return float(res.energy[0])

        return call

    def new_model():
        model = DispersionModel(
            atoms.numbers, atoms.positions / Bohr, atoms.cell.array / Bohr, atoms.pbc
        )
        model.set_realspace_cutoff(
            config.cutoff / Bohr, config.atm_cutoff / Bohr, config.cn_cutoff / Bohr
        )
        return model

    kept = new_model()

    def simple(model=None):
        if model is None:
            model = new_model()
        else:
            model.update(atoms.positions / Bohr, atoms.cell.array / Bohr)
        res = model.get_dispersion(RationalDampingParam(method="pbe"), grad=True)
        return float(res["energy"]) * Hartree

    return dict(
        zip(
            WAYS,
            (ours(False), ours(True), simple, lambda: simple(kept)),
            strict=True,
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--smoke", action="store_true", help="tiny, for CI")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    dtypes = ["float64", "float32"]
    if args.smoke:
        args.rounds, args.threads, dtypes = 1, [1], ["float64"]
    warnings.filterwarnings("ignore")
    print(
        f"D3(BJ) energy + forces + stress, cpu, {args.clock} clock, medians of "
        f"{args.rounds} interleaved rounds; ratio = simple-dftd3 time / ours"
    )
    print(
        "| threads | system | dtype | "
        + " | ".join(f"{w} ms" for w in WAYS)
        + " | ratio as called | ratio as called, vs model kept "
        "| ratio with per-atom E | max dE eV |"
    )
    print("|---" * 11 + "|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, atoms in systems().items():
            for dtype in dtypes:
                row = ways(atoms, dtype)
                energies = [way() for way in row.values()]  # warm-up
                times = {k: [] for k in row}
                for r in range(args.rounds):
                    order = list(row.items())
                    for k, way in order if r % 2 == 0 else order[::-1]:
                        t0 = clock()
                        way()
                        times[k].append(clock() - t0)
                ms = [1e3 * statistics.median(times[k]) for k in WAYS]
                called, atomic, simple, kept = ms
                print(
                    f"| {threads} | {name} | {dtype} | "
                    + " | ".join(f"{t:.1f}" for t in ms)
                    + f" | {simple / called:.2f}x | {kept / called:.2f}x "
                    f"| {simple / atomic:.2f}x | {np.ptp(energies):.1e} |"
                )


if __name__ == "__main__":
    main()
