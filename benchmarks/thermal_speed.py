"""QHA and lattice thermal conductivity of several solids: our batched
QhaMaker and ThermalConductivityMaker against phonopy / phono3py fed by
sevenn's calculator one supercell at a time (what a phonopy user writes).

Both sides compute the same volumes, supercells, displacements and meshes in
this process; rounds are interleaved and the ratio is loop / batched of the
median wall times.  Like with like: our QHA relaxes each volume at fixed
cell, and for these solids (atoms where symmetry puts them) that is one
evaluation per volume and no step, as the loop's one energy call.  Each
part also prints where the time goes on both sides (for QHA: the model,
phonopy's objects, force constants, q-mesh, thermal properties and
PhonopyQHA; for kappa: the forces against phono3py's own force constants,
phonons and Boltzmann solution) and the largest difference in the thermal
expansion or kappa at 300 K.

    python benchmarks/thermal_speed.py [--rounds 3] [--threads 1] [--smoke]
        [--only qha|kappa] [--supercell 2] [--kappa-supercell 2] [--mesh 11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SOLIDS = {
    "Si": bulk("Si", "diamond", a=5.45),
    "Cu": bulk("Cu", "fcc", a=3.62),
    "Al": bulk("Al", "fcc", a=4.04),
    "MgO": bulk("MgO", "rocksalt", a=4.25),
    "NaCl": bulk("NaCl", "rocksalt", a=5.65),
    "GaAs": bulk("GaAs", "zincblende", a=5.75),
}


#: Solids for kappa (primitive cells, no imaginary modes with 7net-0).
KAPPA_SOLIDS = {
    "Si": bulk("Si", "diamond", a=5.45),
    "C": bulk("C", "diamond", a=3.57),
    "Ge": bulk("Ge", "diamond", a=5.76),
    "MgO": bulk("MgO", "rocksalt", a=4.25),
    "NaCl": bulk("NaCl", "rocksalt", a=5.65),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--only", choices=["qha", "kappa"], default=None)
    parser.add_argument(
        "--supercell", type=int, default=2, help="N for NxNxN QHA supercells"
    )
    parser.add_argument(
        "--kappa-supercell",
        type=int,
        default=2,
        help="N for NxNxN supercells of the primitive cells (fc2 and fc3)",
    )
    parser.add_argument("--mesh", type=int, default=11, help="kappa q-mesh NxNxN")
    parser.add_argument("--smoke", action="store_true", help="2 solids, 1 round")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from sevenn.calculator import SevenNetCalculator

    from sevenomni_core import load_model

    calc = SevenNetCalculator(str(load_model(args.model).path), device="cpu")
    if args.only in (None, "qha"):
        qha(args, calc)
    if args.only in (None, "kappa"):
        kappa(args, calc)


def qha(args, calc):
    """The QHA part: six solids at 7 volumes (5 and two solids in smoke mode)."""
    from oracle.phonopy_qha import phonopy_qha
    from pymatgen.io.ase import AseAtomsAdaptor

    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.properties import QhaMaker
    from sevenomni_flows.properties.phonon import CUTOFF_FREQUENCY

    solids = dict(list(SOLIDS.items())[:2]) if args.smoke else SOLIDS
    rounds = 1 if args.smoke else args.rounds
    supercell = (np.eye(3, dtype=int) * args.supercell).tolist()
    maker = QhaMaker(
        settings=ModelSettings(args.model, device="cpu"),
        phonon={"supercell": supercell, "displacement": 0.03},
        temperatures={"t_max": 800.0},
        n_volumes=5 if args.smoke else 7,
    )
    structures = [AseAtomsAdaptor.get_structure(a) for a in solids.values()]
    maker.run(structures[:1], ["warm-up"])  # load and compile once, both sides
    ours, loop = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        docs = maker.run(structures, list(solids))
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        refs = [
            phonopy_qha(a, maker, calc, supercell, cutoff_frequency=CUTOFF_FREQUENCY)
            for a in solids.values()
        ]
        loop.append(time.perf_counter() - start)
    worst = 0.0
    for doc, ref in zip(docs, refs, strict=True):
        assert doc.state == "completed", doc.error
        at = doc.temperatures.index(300.0)
        alpha = float(np.asarray(ref.thermal_expansion)[at])
        worst = max(worst, abs(doc.thermal_expansion_300k / alpha - 1))
        print(
            f"{doc.label:5s} alpha_V(300 K): ours {doc.thermal_expansion_300k:.3e}, "
            f"phonopy+sevenn {alpha:.3e} /K"
        )
    n_cells = len(solids) * maker.n_volumes
    print(
        f"QHA: {len(solids)} solids x {maker.n_volumes} volumes ({n_cells} phonon "
        f"calculations, {args.supercell}x{args.supercell}x{args.supercell} "
        f"supercells), {rounds} rounds, {args.threads} thread(s)"
    )
    print(
        f"loop median {statistics.median(loop):.2f} s, ours "
        f"{statistics.median(ours):.2f} s: ratio loop / ours "
        f"{statistics.median(loop) / statistics.median(ours):.2f}x"
    )
    print(f"largest |alpha_300K ours / phonopy+sevenn - 1|: {worst:.4f}")
    parts = {
        "model: relaxations (ours), energies (loop)": "relax_groups",
        "model: displaced supercells": "predict",
        "phonopy objects (symmetry search)": ("api_phonopy", "__init__"),
        "displacements": "generate_displacements",
        "force constants": "produce_force_constants",
        "q-mesh set-up": "init_mesh",
        "q-mesh phonons": "_set_phonon",
        "thermal properties": "run_thermal_properties",
        "PhonopyQHA": ("api_qha", "__init__"),
    }
    _profile_parts("ours", lambda: maker.run(structures, list(solids)), parts)
    parts["model: relaxations (ours), energies (loop)"] = "get_potential_energy"
    parts["model: displaced supercells"] = "get_forces"
    _profile_parts(
        "phonopy + sevenn loop",
        lambda: [
            phonopy_qha(a, maker, calc, supercell, cutoff_frequency=CUTOFF_FREQUENCY)
            for a in solids.values()
        ],
        parts,
    )


def kappa(args, calc):
    """The kappa part: five solids in the RTA (two, on a 7x7x7 mesh with
    nearest-neighbour pairs only, in smoke mode)."""
    from oracle.phono3py_kappa import kappa_average, phono3py_kappa
    from pymatgen.io.ase import AseAtomsAdaptor

    from sevenomni_flows.jobs import ModelSettings
    from sevenomni_flows.properties import ThermalConductivityMaker

    solids = dict(list(KAPPA_SOLIDS.items())[:2]) if args.smoke else KAPPA_SOLIDS
    rounds = 1 if args.smoke else args.rounds
    n = args.kappa_supercell
    mesh = 7 if args.smoke else args.mesh
    maker = ThermalConductivityMaker(
        settings=ModelSettings(args.model, device="cpu"),
        phonon={"supercell": (np.eye(3, dtype=int) * n).tolist(), "mesh": [mesh] * 3},
        temperatures=[300.0],
        cutoff_pair_distance=2.5 if args.smoke else None,  # smoke: nearest pairs
    )
    structures = [AseAtomsAdaptor.get_structure(a) for a in solids.values()]
    maker.run(structures[:1], ["warm-up"])
    ours, loop = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        docs = maker.run(structures, list(solids))
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        refs = [phono3py_kappa(a, maker, calc) for a in solids.values()]
        loop.append(time.perf_counter() - start)
    worst = 0.0
    for doc, ref in zip(docs, refs, strict=True):
        assert doc.state == "completed", doc.error
        expected = float(kappa_average(ref)[0])
        worst = max(worst, abs(doc.kappa_300k / expected - 1))
        print(
            f"{doc.label:5s} kappa(300 K): ours {doc.kappa_300k:.2f}, "
            f"phono3py+sevenn {expected:.2f} W/m/K ({doc.n_supercells} supercells)"
        )
    print(
        f"kappa (RTA): {len(solids)} solids, {n}x{n}x{n} supercells of the "
        f"primitive cells, {mesh}x{mesh}x{mesh} mesh, {rounds} rounds, "
        f"{args.threads} thread(s)"
    )
    print(
        f"loop median {statistics.median(loop):.2f} s, ours "
        f"{statistics.median(ours):.2f} s: ratio loop / ours "
        f"{statistics.median(loop) / statistics.median(ours):.2f}x"
    )
    print(f"largest |kappa_300K ours / phono3py+sevenn - 1|: {worst:.4f}")
    parts = {
        "forces": "predict",
        "phono3py set-up (symmetry, displacements)": "phono3py",
        "force constants (fc3, fc2)": "produce_fc3",
        "phonons on the mesh": "init_phph_interaction",
        "Boltzmann solution (ph-ph interaction, kappa)": "run_thermal_conductivity",
    }
    _profile_parts("ours", lambda: maker.run(structures, list(solids)), parts)
    parts["forces"] = "get_forces"
    parts["phono3py set-up (symmetry, displacements)"] = "generate_displacements"
    _profile_parts(
        "phono3py + sevenn loop",
        lambda: [phono3py_kappa(a, maker, calc) for a in solids.values()],
        parts,
    )


def _profile_parts(side: str, run, parts: dict) -> None:
    """Where the time of ``run()`` goes, by the functions named in ``parts``
    (a name, or a part of the file's path and a name); cProfile's own
    overhead inflates the Python-heavy parts."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    found = {}
    for (file, _, name), (_, _, _, cumulative, _) in stats.stats.items():
        for what, func in parts.items():
            where, func = func if isinstance(func, tuple) else ("", func)
            if name == func and where in file:
                found[what] = max(found.get(what, 0.0), cumulative)
    print(f"where the time goes, {side} ({total:.2f} s profiled):")
    for what in parts:
        seconds = found.get(what, 0.0)
        print(f"  {what}: {seconds:.2f} s ({seconds / total:.0%})")


if __name__ == "__main__":
    main()
