"""Batched FIRE against batched L-BFGS and BFGS on constrained relaxations.

(a) Guest molecules (CO2, H2O, N2) at random places in the pores of
Mg-MOF-74 (its 54-atom primitive cell), the framework fixed; (b) CO, O and
H on fcc sites of Pt(111) (3x3, 4 layers, the bottom two fixed).  Each
optimiser relaxes every structure of a set in one batched run on the same
model.  Prints steps (total and median per structure), wall time, the
ratios FIRE / L-BFGS (and BFGS), and per structure each optimiser's final
energy above the lowest and the largest difference between optimisers.

    python benchmarks/relax_optimizers.py [--placements 9] [--smoke]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111, molecule
from ase.constraints import FixAtoms
from ase.data import covalent_radii
from ase.geometry import get_distances
from ase.io import read

MOF = Path(__file__).resolve().parents[1] / "workflows/structures/Mg-MOF-74.cif"
OPTIMIZERS = ("fire", "lbfgs", "bfgs")

#: Rhombohedral primitive vectors of an R-centred hexagonal cell (obverse).
HEX_TO_RHOMBOHEDRAL = np.array([[2, 1, 1], [-1, 1, 1], [-1, -2, 1]]) / 3.0


def primitive_mof() -> Atoms:
    """Mg-MOF-74's primitive cell (54 atoms), one third of the CIF's hexagonal cell."""
    hexagonal = read(MOF)
    cell = HEX_TO_RHOMBOHEDRAL @ hexagonal.cell.array
    frac = np.linalg.solve(cell.T, hexagonal.positions.T).T % 1.0
    _, keep = np.unique(np.round(frac, 3) % 1.0, axis=0, return_index=True)
    keep = np.sort(keep)
    prim = Atoms(hexagonal.numbers[keep], scaled_positions=frac[keep], cell=cell)
    prim.pbc = True
    if 3 * len(prim) != len(hexagonal):
        raise RuntimeError(f"{MOF.name}: {len(prim)} atoms in the primitive cell")
    return prim


def guests_in_mof(n: int, seed: int = 0, min_distance: float = 2.0) -> list[Atoms]:
    """``n`` framework + guest structures, guests cycling through CO2, H2O, N2.

    Each guest gets a random orientation and a random place in the cell,
    rejected while any guest atom lies closer than ``min_distance`` (Å) to
    the framework; the fixed framework atoms fill only the pore walls.
    """
    framework = primitive_mof()
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        guest = molecule(("CO2", "H2O", "N2")[k % 3])
        while True:
            g = guest.copy()
            g.rotate(rng.normal(size=3), rng.normal(size=3), center="COM")
            g.translate(rng.random(3) @ framework.cell - g.get_center_of_mass())
            _, d = get_distances(
                g.positions, framework.positions, framework.cell, pbc=True
            )
            if d.min() >= min_distance:
                break
        atoms = framework + g
        atoms.set_constraint(FixAtoms(indices=range(len(framework))))
        atoms.info["label"] = f"MOF-74 + {g.get_chemical_formula()}"
        out.append(atoms)
    return out


def adsorbates_on_pt(names: tuple[str, ...] = ("CO", "O", "H")) -> list[Atoms]:
    """Each adsorbate on an fcc site of Pt(111), bound atom first (C of CO).

    Placed as the adsorption workflow places them: the bound atom 0.95 times
    the sum of covalent radii from its nearest surface atoms, at least 0.8 Å
    above the surface.
    """
    out = []
    for name in names:
        slab = fcc111("Pt", size=(3, 3, 4), vacuum=8.0)
        z = slab.positions[:, 2]
        fixed = z < np.median(z)
        lateral = slab.get_distance(0, 1) / np.sqrt(3)  # fcc site to its 3 atoms
        ads = Atoms(name, positions=[[0.0, 0.0, 1.15 * k] for k in range(len(name))])
        bond = 0.95 * (covalent_radii[ads.numbers[0]] + covalent_radii[78])
        height = np.sqrt(max(bond**2 - lateral**2, 0.8**2))
        add_adsorbate(slab, ads, height, "fcc")
        slab.set_constraint(FixAtoms(mask=np.r_[fixed, [False] * len(ads)]))
        slab.info["label"] = f"Pt(111) + {name}"
        out.append(slab)
    return out


def run_set(structures, pot, args) -> dict[str, tuple[list, float]]:
    """Each optimiser's results and wall time on one set of structures."""
    from sevenomni_core.batch import relax

    out = {}
    for name in args.optimizers:
        t0 = time.perf_counter()
        results = relax(
            structures,
            model=pot,
            fmax=args.fmax,
            max_steps=args.max_steps,
            optimizer=name,
        )
        out[name] = (results, time.perf_counter() - t0)
    return out


def report(title: str, structures, runs: dict[str, tuple[list, float]]) -> None:
    print(f"\n{title}: {len(structures)} structures")
    print("| optimiser | converged | steps total | steps median | wall s |")
    print("|---|---|---|---|---|")
    for name, (results, wall) in runs.items():
        steps = [r.steps for r in results]
        ok = sum(r.converged for r in results)
        print(
            f"| {name} | {ok}/{len(results)} | {sum(steps)} | "
            f"{np.median(steps):.0f} | {wall:.1f} |"
        )
    fire_steps = sum(r.steps for r in runs["fire"][0])
    for name in runs:
        if name == "fire":
            continue
        steps = sum(r.steps for r in runs[name][0])
        print(
            f"FIRE / {name}: steps {fire_steps / max(steps, 1):.2f}x, "
            f"time {runs['fire'][1] / runs[name][1]:.2f}x"
        )
    names = " / ".join(runs)
    print(f"| structure | steps {names} | E - lowest E, meV, {names} | max dE, meV |")
    print("|---|---|---|---|")
    for i, atoms in enumerate(structures):
        steps = " / ".join(str(r[i].steps) for r, _ in runs.values())
        energies = np.array([r[i].energy for r, _ in runs.values()]) * 1e3
        above = " / ".join(f"{e:.1f}" for e in energies - energies.min())
        de = energies.max() - energies.min()
        print(f"| {atoms.info['label']} | {steps} | {above} | {de:.2f} |")
    print("(energies whether converged or not; see the step counts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=6, help="guests in MOF")
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    parser.add_argument("--smoke", action="store_true", help="2 placements, 10 steps")
    args = parser.parse_args()
    if args.smoke:
        args.placements, args.max_steps = 2, 10
    if "fire" not in args.optimizers:
        parser.error("the ratios need fire among --optimizers")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from sevenomni_core.model import load_model

    pot = load_model(args.model, device=args.device)
    print(
        f"model {args.model}, device {args.device}, fmax {args.fmax} eV/Å, "
        f"max_steps {args.max_steps}, torch threads {torch.get_num_threads()}"
    )
    sets = [
        ("(a) guests in Mg-MOF-74, framework fixed", guests_in_mof(args.placements))
    ]
    pt = adsorbates_on_pt(("CO", "O") if args.smoke else ("CO", "O", "H"))
    sets.append(("(b) adsorbates on Pt(111) fcc sites, bottom 2 layers fixed", pt))
    for title, structures in sets:
        report(title, structures, run_set(structures, pot, args))


if __name__ == "__main__":
    main()
