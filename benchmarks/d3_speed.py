"""D3 energy + forces + stress per call: ours against simple-dftd3, on the CPU.

Mg-MOF-74 + CO2 (165 atoms) and a Pt(111) slab (256 atoms), D3(BJ), PBE
parameters, simple-dftd3's cutoffs (60 bohr pairs, 40 bohr coordination
numbers), no three-body term.  In one process, interleaved rounds, medians:

- ours before: the batched torch path (``backend="torch"``, what every CPU
  call paid before, and what GPUs and batches without ``dftd3`` still take);
- ours now: :func:`~sevenomni_core.dispersion.d3_packed` with its default
  backend (simple-dftd3 on the CPU), with per-atom energies (as
  ``predict`` and the calculator ask) and without them;
- simple-dftd3: its Python API (``DispersionModel.get_dispersion`` with
  ``grad=True``: energy, gradient, virial), as its own users call it.

Ratios are simple-dftd3's time over ours (> 1: ours is faster).
simple-dftd3's wheel is built without OpenMP: it runs on one thread whatever
the thread count, which sets torch's only.

    python benchmarks/d3_speed.py [--rounds 5] [--threads 1 2] [--smoke]
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


def systems() -> dict[str, Atoms]:
    mof = read(MOF)
    co2 = molecule("CO2")
    co2.positions += mof.cell.array.sum(0) / 2
    slab = fcc111("Pt", (8, 8, 4), vacuum=8.0)
    slab.rattle(0.02, seed=3)
    return {"Mg-MOF-74+CO2 (165)": mof + co2, "Pt(111) slab (256)": slab}


def ways(atoms: Atoms, dtype: torch.dtype) -> dict:
    """The callables timed, each returning the energy (eV)."""
    from ase.units import Bohr, Hartree
    from dftd3.interface import DispersionModel, RationalDampingParam

    from sevenomni_core.dispersion import D3Config, d3_packed

    config = D3Config("d3bj", functional="pbe")
    params = config.parameters(None)
    packed = (
        atoms.numbers,
        atoms.positions,
        atoms.cell.array[None],
        atoms.pbc[None],
        [len(atoms)],
        [params],
        config,
        torch.device("cpu"),
        dtype,
    )

    def ours(backend: str, energies: bool = True):
        return lambda: float(
            d3_packed(*packed, energies=energies, backend=backend).energy[0]
        )

    def simple():
        model = DispersionModel(
            atoms.numbers, atoms.positions / Bohr, atoms.cell.array / Bohr, atoms.pbc
        )
        model.set_realspace_cutoff(
            config.cutoff / Bohr, config.atm_cutoff / Bohr, config.cn_cutoff / Bohr
        )
        res = model.get_dispersion(RationalDampingParam(method="pbe"), grad=True)
        return float(res["energy"]) * Hartree

    return {
        "ours before (torch)": ours("torch"),
        "ours now": ours("auto"),
        "ours now, no per-atom E": ours("auto", energies=False),
        "simple-dftd3": simple,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--smoke", action="store_true", help="tiny, for CI")
    args = parser.parse_args()
    dtypes = [torch.float64, torch.float32]
    if args.smoke:
        args.rounds, args.threads, dtypes = 1, [1], [torch.float64]
    warnings.filterwarnings("ignore")
    print(
        f"D3(BJ) energy + forces + stress, cpu, medians of {args.rounds} "
        "interleaved rounds; ratio = simple-dftd3 time / ours"
    )
    header = (
        "| threads | system | dtype | ours before (torch) ms | ours now ms "
        "| ours now, no per-atom E ms | simple-dftd3 ms | ratio before "
        "| ratio now | ratio now, no per-atom E | max dE eV |"
    )
    print(header)
    print("|---" * 11 + "|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, atoms in systems().items():
            for dtype in dtypes:
                row = ways(atoms, dtype)
                energies = {k: way() for k, way in row.items()}  # warm-up
                times = {k: [] for k in row}
                for _ in range(args.rounds):
                    for k, way in row.items():
                        t0 = time.perf_counter()
                        way()
                        times[k].append(time.perf_counter() - t0)
                ms = {k: 1e3 * statistics.median(t) for k, t in times.items()}
                ref = ms["simple-dftd3"]
                spread = np.ptp(list(energies.values()))
                print(
                    f"| {threads} | {name} | {str(dtype).removeprefix('torch.')} "
                    f"| {ms['ours before (torch)']:.1f} | {ms['ours now']:.1f} "
                    f"| {ms['ours now, no per-atom E']:.1f} | {ref:.1f} "
                    f"| {ref / ms['ours before (torch)']:.2f}x "
                    f"| {ref / ms['ours now']:.2f}x "
                    f"| {ref / ms['ours now, no per-atom E']:.2f}x | {spread:.1e} |"
                )


if __name__ == "__main__":
    main()
