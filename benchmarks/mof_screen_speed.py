"""Widom over many CoRE MOFs: one shared-batch job against a per-framework loop.

Both sides run the same WidomMaker (fixed insertion count, no relaxed sites)
on the same frameworks: the shared side on all of them in one call (every
framework's and guest's insertions in the same batched model passes, as the
planner's one job per property does), the loop side one framework per call
(what the planner made before: one job per framework).  Rounds are
interleaved; the ratio of insertion throughputs (insertions/s) is printed
per round and as the median.

    python benchmarks/mof_screen_speed.py            # 8 MOFs, 200 insertions, 3 rounds
    python benchmarks/mof_screen_speed.py --smoke    # 2 MOFs, 10 insertions, 1 round
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from sevenomni_flows.adsorption import core_mof
from sevenomni_flows.jobs import ModelSettings
from sevenomni_flows.properties.widom.maker import WidomMaker

#: Small, ordered CoRE MOF 2019-ASR frameworks with open metal sites, wide
#: enough for CO2 and N2 (the example's filter).
FILTER = {
    "Has_OMS": True,
    "DISORDER": None,
    "PLD": {"$gt": 3.8},
    "supercell_atoms": {"$lte": 150},
    "All_Metals": {"$in": ["Cu", "Zn", "Mg", "Co", "Ni", "Mn", "Fe", "Cd"]},
}


def _insertions(docs) -> int:
    return sum(d.evaluations for d in docs if d.state == "completed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a short check")
    parser.add_argument("--frameworks", type=int, default=8)
    parser.add_argument("--insertions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="7net-0")
    args = parser.parse_args()
    if args.smoke:
        args.frameworks, args.insertions, args.rounds = 2, 10, 1
    rows = core_mof.select("2019-ASR", FILTER, limit=args.frameworks)
    paths = core_mof.cif_paths("2019-ASR", [r["refcode"] for r in rows])
    files, labels = [str(p) for p in paths.values()], list(paths)
    maker = WidomMaker(
        settings=ModelSettings(model=args.model, device="cpu"),
        guests=["CO2", "N2"],
        n_insertions=args.insertions,
        site_relaxations=0,
    )
    maker.run(files[:1], labels[:1])  # load the model, warm the kernels
    ratios = []
    for k in range(args.rounds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            docs = maker.run(files, labels)
            shared = _insertions(docs) / (time.perf_counter() - start)
            start = time.perf_counter()
            docs = [
                d
                for f, lab in zip(files, labels, strict=True)
                for d in maker.run(f, lab)
            ]
            loop = _insertions(docs) / (time.perf_counter() - start)
        ratios.append(shared / loop)
        print(
            f"round {k + 1}: shared {shared:.1f} insertions/s, per-framework "
            f"loop {loop:.1f} insertions/s, ratio {shared / loop:.2f}"
        )
    print(
        f"{len(files)} frameworks x 2 guests x {args.insertions} insertions: "
        f"shared / loop throughput ratio {statistics.median(ratios):.2f} (median)"
    )


if __name__ == "__main__":
    main()
