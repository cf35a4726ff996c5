"""(c) Largest cell and peak memory, (d) time per step against batch size, and
the out-of-memory split, on one device.

(c) For each model, fcc Cu supercells grow (about 2x atoms per step) until
the energy+forces+stress call runs out of memory, ``--max-atoms`` or the time
limit; prints the largest cell that fit and its peak memory.
(d) Batches of 1, 2, 4, ... small bulk cells: milliseconds per batched step
and structures/s, which stop growing where the device saturates.
(e) One batch forced past the device memory (a fixed batch size of large
cells): ``predict`` must split it and still return every result.

    python benchmarks/gpu_capacity.py [--device cuda] [--models 7net-0,omni]
        [--max-atoms 2000000] [--time-limit 90] [--max-batch 1024]

``omni`` is the SevenNet-Omni architecture with random weights (built with
sevenn, as in the tests).  On the CPU, memory is the process's peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _structures import small_bulk
from ase.build import bulk


def _model(name: str, device: str, backend: str, folder: Path):
    from sevenomni_core.model import load_model

    if name == "omni":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from oracle.omni_arch import make_omni_arch_checkpoint

        path = folder / "checkpoint_omni_arch.pth"
        if not path.exists():
            make_omni_arch_checkpoint(path, seed=0)
        name = str(path)
    return load_model(name, device=device, backend=backend)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def largest_cell(pot, max_atoms: int, time_limit: float) -> None:
    """(c) Grow a Cu supercell until it no longer fits."""
    from sevenomni_core.batch import predict

    start = time.perf_counter()
    n, best = 2, None
    while 4 * n**3 <= max_atoms and time.perf_counter() - start < time_limit:
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (n, n, n)
        atoms.rattle(0.01, seed=n)
        _peak_reset(pot.device)
        t0 = time.perf_counter()
        [out] = predict([atoms], model=pot, batch_size=1)
        if pot.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if not out.ok:
            print(f"  {len(atoms):>9} atoms: {out.error}")
            break
        best = (len(atoms), _peak_mib(pot.device), dt)
        print(
            f"  {len(atoms):>9} atoms: {dt:8.3f} s, peak {best[1]:9.0f} MiB "
            f"({best[1] * 2**20 / len(atoms) / 1024:.1f} KiB/atom)"
        )
        n = max(n + 1, round(n * 2 ** (1 / 3)))
    if best:
        print(
            f"largest cell (c) {pot.name}: {best[0]} atoms, peak {best[1]:.0f} MiB, "
            f"{best[2]:.2f} s per energy+forces+stress"
        )


def batch_scaling(pot, max_batch: int, repeats: int = 3) -> None:
    """(d) Milliseconds per batched step against the number of structures."""
    from sevenomni_core.batch import predict

    structures = small_bulk(max_batch, seed=3)
    predict(structures[:2], model=pot)  # warm-up
    print(f"{'batch':>7}{'ms/step':>10}{'structures/s':>14}{'atoms/s':>10}")
    size = 1
    while size <= max_batch:
        chunk = structures[:size]
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            predict(chunk, model=pot, batch_size=size)
            if pot.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        atoms = sum(len(a) for a in chunk)
        print(f"{size:>7}{t * 1e3:>10.1f}{size / t:>14.1f}{atoms / t:>10.0f}")
        size *= 2


class _Splits(logging.Handler):
    def __init__(self):
        super().__init__()
        self.count = 0

    def emit(self, record):
        if "splitting the batch" in record.getMessage():
            self.count += 1


def oom_split(pot, atoms_per_cell: int) -> None:
    """(e) A batch too large for the device is split, and every result returns."""
    from sevenomni_core.batch import predict

    if pot.device.type != "cuda":
        print("out-of-memory split (e): not exercised off CUDA")
        return
    n = max(2, round((atoms_per_cell / 4) ** (1 / 3)))
    cells = []
    for i in range(8):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (n, n, n)
        atoms.rattle(0.01, seed=i)
        cells.append(atoms)
    handler = _Splits()
    logging.getLogger("sevenomni").addHandler(handler)
    logging.getLogger("sevenomni").setLevel(logging.INFO)
    try:
        out = predict(cells, model=pot, batch_size=len(cells))
    finally:
        logging.getLogger("sevenomni").removeHandler(handler)
    ok = sum(o.ok for o in out)
    energies = np.array(
        [o.energy / len(a) for o, a in zip(out, cells, strict=True) if o.ok]
    )
    print(
        f"out-of-memory split (e): {len(cells)} cells of {len(cells[0])} atoms in "
        f"one batch, {handler.count} splits, {ok}/{len(cells)} results, "
        f"energy spread {np.ptp(energies) * 1e3 if ok else float('nan'):.2f} meV/atom"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backend", default="e3nn")
    parser.add_argument("--models", default="7net-0,7net-l3i5,omni")
    parser.add_argument("--max-atoms", type=int, default=2_000_000)
    parser.add_argument("--time-limit", type=float, default=90.0)
    parser.add_argument("--max-batch", type=int, default=1024)
    parser.add_argument("--work", default="/tmp/sevenomni-gpu-capacity")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    folder = Path(args.work)
    folder.mkdir(parents=True, exist_ok=True)
    print(
        f"device {args.device}, backend {args.backend}, torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}, "
        + (torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")
    )
    largest = {}
    for name in args.models.split(","):
        pot = _model(name, args.device, args.backend, folder)
        print(f"== {name} ({pot.path.name}, {pot.dtype}, backend {pot.backend})")
        largest_cell(pot, args.max_atoms, args.time_limit)
        largest[name] = pot
    first = largest[args.models.split(",")[0]]
    print(f"== time per step vs batch size (d), {first.name}")
    batch_scaling(first, args.max_batch)
    print(f"== out-of-memory split (e), {first.name}")
    oom_split(first, args.max_atoms // 4)


if __name__ == "__main__":
    main()
