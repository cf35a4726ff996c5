"""Batched NEB: many climbing-image bands against ASE NEB + FIRE loops with sevenn.

``--n`` vacancy hops in small fcc cells (2x2x2 primitive supercells, 7 atoms,
ten metals, with and without one substitutional neighbour), end points
relaxed first (not timed).  Both sides run CI-NEB with 3 interior images,
IDPP start, improved tangent, FIRE to ``--fmax``: ours all bands at once with
:func:`~sevenomni_core.batch.neb`, the peer one band after the other with
ASE's ``NEB(climb=True)`` and ``sevenn``'s calculator on the same checkpoint
(float32, CPU, one process).  Prints the times, their ratio and how the
barriers compare.

    python benchmarks/neb_speed.py [--n 20] [--fmax 0.05] [--smoke]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

METALS = [
    ("Cu", 3.61),
    ("Al", 4.05),
    ("Ni", 3.52),
    ("Ag", 4.09),
    ("Pd", 3.89),
    ("Pt", 3.92),
    ("Au", 4.08),
    ("Rh", 3.80),
    ("Ir", 3.84),
    ("Pb", 4.95),
]


def hops(n: int):
    """``n`` vacancy hops: (initial, final) pairs, unrelaxed."""
    from ase.build import bulk

    out = []
    for k in range(n):
        name, a = METALS[k % len(METALS)]
        cell = bulk(name, "fcc", a=a) * (2, 2, 2)
        d = cell.get_distances(0, range(1, len(cell)), mic=True)
        j = 1 + int(np.argmin(d))
        if k >= len(METALS):  # a substitutional neighbour
            other = next(m for m in range(1, len(cell)) if m != j)
            cell.symbols[other] = "Ni" if name != "Ni" else "Cu"
        first, last = cell.copy(), cell.copy()
        last.positions[j] = cell.positions[0]
        del first[0]
        del last[0]
        out.append((first, last))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.max_steps = 1, 2
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from ase.mep import NEB
    from ase.optimize import FIRE
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core.batch import neb, relax
    from sevenomni_core.batch.neb import interpolate
    from sevenomni_core.model import load_model

    pot = load_model(args.model, device="cpu")
    ref = SevenNetCalculator(str(pot.path), device="cpu")
    pairs = hops(args.n)
    ends = relax([a for pair in pairs for a in pair], model=pot, fmax=0.01)
    bands = [(ends[2 * k].atoms, ends[2 * k + 1].atoms) for k in range(args.n)]
    warm = bands[0][0].copy()
    warm.calc = ref
    warm.get_potential_energy()  # first-call set-up is not timed
    print(
        f"{args.n} vacancy-hop CI-NEB bands (3 interior images, 7 atoms), "
        f"fmax {args.fmax}, model {args.model}, float32, CPU, "
        f"torch threads {args.threads}"
    )

    start = time.perf_counter()
    loop = []
    for first, last in bands:
        images = interpolate(first, last, 3, "idpp")
        for image in images:
            image.calc = ref
        band = NEB(
            images, climb=True, method="improvedtangent", allow_shared_calculator=True
        )
        opt = FIRE(band, logfile=None)
        ok = opt.run(fmax=args.fmax, steps=args.max_steps)
        e = []
        for image in images:
            image.calc = ref
            e.append(image.get_potential_energy())
        loop.append((max(e) - e[0], bool(ok), opt.nsteps))
    t_loop = time.perf_counter() - start

    start = time.perf_counter()
    ours = neb(bands, model=pot, n_images=3, fmax=args.fmax, max_steps=args.max_steps)
    t_ours = time.perf_counter() - start

    both = [
        abs(o.barrier - r[0])
        for o, r in zip(ours, loop, strict=True)
        if o.converged and r[1]
    ]
    print(
        f"ASE NEB + FIRE + sevenn loop {t_loop:8.1f} s "
        f"({sum(r[2] for r in loop)} steps, {sum(r[1] for r in loop)} converged)"
    )
    print(
        f"ours batched                 {t_ours:8.1f} s "
        f"({sum(o.steps for o in ours)} steps, {sum(o.converged for o in ours)} "
        "converged)"
    )
    print(f"ratio                        {t_loop / t_ours:8.2f}x")
    if both:
        print(
            f"barrier, both converged ({len(both)}): median |dE| "
            f"{np.median(both) * 1e3:.2f} meV, max {max(both) * 1e3:.2f} meV"
        )
    print(
        "barriers (eV), ours: "
        + ", ".join(
            f"{o.barrier:.3f}" if o.barrier is not None else "failed" for o in ours
        )
    )


if __name__ == "__main__":
    main()
