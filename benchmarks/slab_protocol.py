"""Slab protocols on Pt(111): the flow against plain ASE, and layer convergence.

1. The adsorption flow with the ``converged`` preset (4 layers, bottom 2
   fixed, p(3x3), 15 Å vacuum, batched L-BFGS) against ASE's BFGS on a slab
   built independently with ``ase.build.fcc111`` (same layers, fixed layers
   and lateral cell; gas references relaxed the same way): CO top, CO fcc,
   O fcc, H fcc.
2. The ``slab_convergence`` property: E_ads at 3-6 layers on p(2x2) and
   p(3x3), top 2 layers free, in one batched job; deviations from 6 layers
   on p(3x3).

    python benchmarks/slab_protocol.py [--model 7net-mf-0 --task PBE] [--smoke]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111
from ase.constraints import FixAtoms
from ase.optimize import BFGS
from pymatgen.io.ase import AseAtomsAdaptor

A_PT = 3.97  # Å, used by both sides of the comparison
CASES = {
    ("CO", "ontop"): (Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]]), 1.85),
    ("CO", "fcc"): (Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.17]]), 1.3),
    ("O", "fcc"): (Atoms("O"), 1.2),
    ("H", "fcc"): (Atoms("H"), 0.9),
}


def platinum():
    return AseAtomsAdaptor.get_structure(bulk("Pt", "fcc", a=A_PT))


def ase_adsorption_energies(calc, fmax: float = 0.01) -> dict:
    """E_ads of :data:`CASES` on ``fcc111("Pt", (3, 3, 4))``, ASE BFGS, gas refs."""

    def relaxed_energy(atoms):
        atoms.calc = calc
        BFGS(atoms, logfile=None).run(fmax=fmax, steps=500)
        return atoms.get_potential_energy()

    def slab():
        s = fcc111("Pt", size=(3, 3, 4), a=A_PT, vacuum=7.5)
        s.set_constraint(FixAtoms(mask=s.get_tags() >= 3))  # bottom 2 of 4
        return s

    def gas(atoms):
        atoms.center(vacuum=7.5)
        return relaxed_energy(atoms)

    e_slab = relaxed_energy(slab())
    h2 = gas(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.75]]))
    h2o = gas(Atoms("OH2", positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]]))
    co = gas(Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.14]]))
    refs = {"CO": co, "O": h2o - h2, "H": h2 / 2}
    out = {}
    for (name, site), (ads, height) in CASES.items():
        s = slab()
        add_adsorbate(s, ads.copy(), height, site, mol_index=0)
        out[name, site] = relaxed_energy(s) - e_slab - refs[name]
    return out


def flow_adsorption_energies(settings, fmax: float = 0.01) -> dict:
    """E_ads of :data:`CASES` from the adsorption flow, ``converged`` preset."""
    from sevenomni_flows.properties.adsorption import SlabAdsorptionMaker

    maker = SlabAdsorptionMaker(
        settings=settings,
        adsorbates=sorted({name for name, _ in CASES}),
        slab="converged",
        relax={"fmax": fmax, "max_steps": 500},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = maker.run(platinum(), "Pt")
    out = {}
    for doc in docs:
        assert doc.state == "completed", doc.error
        assert (doc.slab["layers"], doc.slab["fixed_layers"]) == (4, 2)
        for c in doc.candidates:
            if c["site"] == c["final_site"] and c["converged"] and not c["anomalies"]:
                out[doc.adsorbate, c["site"]] = c["adsorption_energy"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="7net-mf-0")
    parser.add_argument("--task", default="PBE")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="7net-0, tiny, for CI")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from sevenomni_core import SevenOmniCalculator
    from sevenomni_flows import ModelSettings
    from sevenomni_flows.properties.slab_convergence import SlabConvergenceMaker

    if args.smoke:
        args.model, args.task = "7net-0", None
    settings = ModelSettings(model=args.model, task=args.task, device="cpu")
    print(
        f"Pt(111), a = {A_PT} Å, {args.model} task {args.task}, cpu, "
        f"{torch.get_num_threads()} threads"
    )
    if not args.smoke:
        start = time.perf_counter()
        ours = flow_adsorption_energies(settings)
        flow_s = time.perf_counter() - start
        start = time.perf_counter()
        calc = SevenOmniCalculator(args.model, task=args.task, device="cpu")
        ref = ase_adsorption_energies(calc)
        ase_s = time.perf_counter() - start
        print("\n| case | flow (eV) | ASE BFGS (eV) | difference (eV) |")
        print("|---|---|---|---|")
        for case, e in ref.items():
            print(
                f"| {case[0]} {case[1]} | {ours[case]:.3f} | {e:.3f} | "
                f"{ours[case] - e:+.3f} |"
            )
        print(
            f"flow {flow_s:.0f} s (all sites of CO, O, H), ASE {ase_s:.0f} s "
            "(these 4 cases)"
        )
    maker = SlabConvergenceMaker(
        settings=settings,
        adsorbates=["H"] if args.smoke else ["CO", "O", "H"],
        layers=[2, 3] if args.smoke else [3, 4, 5, 6],
        supercells=[[1, 1]] if args.smoke else [[2, 2], [3, 3]],
        free_layers=1 if args.smoke else 2,
    )
    start = time.perf_counter()
    docs = maker.run(platinum(), "Pt")
    seconds = time.perf_counter() - start
    print(f"\nslab convergence: one batched job, {seconds:.0f} s")
    print("| adsorbate | layers | supercell | E_ads (eV) | site | vs largest (eV) |")
    print("|---|---|---|---|---|---|")
    for doc in docs:
        for r in doc.rows:
            e = r["adsorption_energy"]
            dev = r["deviation"]
            print(
                f"| {doc.adsorbate} | {r['layers']} | p({r['supercell'][0]}x"
                f"{r['supercell'][1]}) | {'-' if e is None else f'{e:.3f}'} | "
                f"{r['site']} | {'-' if dev is None else f'{dev:+.3f}'} |"
            )


if __name__ == "__main__":
    main()
