"""Converged Henry coefficients: biased Widom rounds against the uniform estimator.

CO2 in Mg-MOF-74 (7net-mf-0, task PBE, with and without D3(BJ)): biased
rounds until 10% on K_H and 1 kJ/mol on Q_st (or 20,000 model
evaluations); then the uniform estimator in rounds up to the same number of
evaluations.  Prints both convergence histories, the evaluations needed,
and the uniform estimator's error at that count: its own bootstrap error,
and the one predicted from the converged biased sample,
σ_u(N) = sqrt((E_q[w h²] − K_H²)/N) (h = e^(−βΔE)/(ρRT)), which a uniform
run that missed the site cannot show.  N2 in Mg-MOF-74 and HKUST-1 (no D3):
biased and uniform rounds, and their difference in combined errors.

    python benchmarks/widom_convergence.py [--cases co2,n2]
        [--dispersion none,d3bj] [--threads 2] [--max 20000] [--seed 0]
        [--target-error 0.1] [--no-uniform | --uniform-only] [--smoke]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

STRUCTURES = Path(__file__).resolve().parents[1] / "workflows" / "structures"
T = 298.0


def predicted_uniform_error(doc, n: int) -> float:
    """The uniform estimator's K_H error at ``n`` insertions, from a biased sample."""
    from sevenomni_flows.properties.widom.averages import K_B, R

    e = np.array(doc.energies)
    w = np.array(doc.importance_weights)
    size = doc.n_insertions - doc.n_failed
    scale = 1.0 / (doc.framework_density * R * T)
    low = e.min()
    h = np.exp(-(e - low) / (K_B * T))
    second = (w * h**2).sum() / size * scale**2 * math.exp(-2 * low / (K_B * T))
    k = doc.henry_coefficient[0]
    return math.sqrt(max(second - k**2, 0.0) / n)


def run(settings, framework, guest, sampling, max_evaluations, args):
    from sevenomni_flows.properties.widom.maker import WidomMaker

    extra = {"seed": args.seed, "target_error": args.target_error}
    if args.smoke:
        extra |= {"site_relaxations": 1, "site_relax": {"max_steps": 5}}
    maker = WidomMaker(
        settings=settings,
        guests=[guest],
        temperatures=[T],
        sampling=sampling,
        max_insertions=max_evaluations,
        **extra,
    )
    start = time.perf_counter()
    [doc] = maker.run(str(STRUCTURES / f"{framework}.cif"), framework)
    return doc, time.perf_counter() - start


def history(doc) -> str:
    return "; ".join(
        f"{h['evaluations']}: {h['henry_coefficient'][0]:.3g} ± "
        f"{h['henry_coefficient_error'][0]:.2g} (Q_st {h['heat_of_adsorption'][0]:.1f}"
        f", Kish {h['effective_insertions'][0]:.0f})"
        for h in doc.history
    )


def row(name, doc, seconds) -> str:
    k, err = doc.henry_coefficient[0], doc.henry_coefficient_error[0]
    q, q_err = doc.heat_of_adsorption[0], doc.heat_of_adsorption_error[0]
    return (
        f"| {name} | {doc.sampling} | {doc.evaluations} | {k:.3g} ± {err:.2g} "
        f"({err / k:.0%}) | {q:.1f} ± {q_err or float('nan'):.1f} | "
        f"{doc.effective_insertions[0]:.0f} | {doc.converged} | {seconds:.0f} s |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="7net-mf-0")
    parser.add_argument("--task", default="PBE")
    parser.add_argument("--cases", default="co2,n2")
    parser.add_argument("--dispersion", default="none,d3bj")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target-error", type=float, default=0.1)
    parser.add_argument(
        "--uniform",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="CO2: also the uniform estimator at the biased run's evaluations",
    )
    parser.add_argument(
        "--uniform-only",
        action="store_true",
        help="CO2: the uniform estimator alone, up to --max evaluations (to run "
        "beside a --no-uniform biased run on another core)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny CI run")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from sevenomni_flows import ModelSettings

    if args.smoke:
        args.model, args.task, args.max = "7net-0", None, 40
        args.cases, args.dispersion = "co2", "none"
    header = (
        "| case | sampling | evaluations | K_H (mol/kg/Pa) | Q_st (kJ/mol) | "
        "Kish | converged | time |\n|---|---|---|---|---|---|---|---|"
    )
    print(f"{args.model} task {args.task}, {T:g} K, cpu, {args.threads} threads")
    for dispersion in args.dispersion.split(","):
        d3 = None if dispersion == "none" else dispersion
        settings = ModelSettings(
            model=args.model, task=args.task, device="cpu", dispersion=d3
        )
        if "co2" in args.cases and args.uniform_only:
            name = f"CO2 Mg-MOF-74 {dispersion}"
            uniform, s2 = run(settings, "Mg-MOF-74", "CO2", "uniform", args.max, args)
            print(header)
            print(row(name, uniform, s2))
            print(f"  history uniform: {history(uniform)}", flush=True)
        elif "co2" in args.cases:
            name = f"CO2 Mg-MOF-74 {dispersion}"
            biased, s1 = run(settings, "Mg-MOF-74", "CO2", "biased", args.max, args)
            n = biased.evaluations
            print(header)
            print(row(name, biased, s1))
            print(f"  history biased: {history(biased)}", flush=True)
            predicted = predicted_uniform_error(biased, n)
            print(
                f"  uniform error predicted at {n} evaluations: "
                f"{predicted / biased.henry_coefficient[0]:.0%} of the biased K_H, "
                f"{predicted / biased.henry_coefficient_error[0]:.1f}x its error",
                flush=True,
            )
            if args.uniform:
                uniform, s2 = run(settings, "Mg-MOF-74", "CO2", "uniform", n, args)
                print(row(name, uniform, s2))
                k = biased.henry_coefficient[0]
                predicted = predicted_uniform_error(biased, uniform.n_insertions)
                own = uniform.henry_coefficient_error[0]
                mine = biased.henry_coefficient_error[0]
                off = abs(uniform.henry_coefficient[0] - k) / k
                print(
                    f"{name}: biased converged={biased.converged} after {n} "
                    f"evaluations (reason: {biased.unconverged_reason}); uniform at "
                    f"{uniform.evaluations}: own error {own / k:.0%} of the biased "
                    f"K_H, predicted {predicted / k:.0%}, off by {off:.0%}; error "
                    f"ratio uniform/biased: own {own / mine:.1f}, predicted "
                    f"{predicted / mine:.1f}"
                )
                print(f"  history uniform: {history(uniform)}")
        if "n2" in args.cases and d3 is None:
            print(header)
            for framework in ("Mg-MOF-74", "HKUST-1"):
                name = f"N2 {framework} {dispersion}"
                docs = []
                for sampling in ("biased", "uniform"):
                    doc, sec = run(settings, framework, "N2", sampling, args.max, args)
                    docs.append(doc)
                    print(row(name, doc, sec), flush=True)
                a, b = docs
                diff = abs(a.henry_coefficient[0] - b.henry_coefficient[0])
                sigma = math.hypot(
                    a.henry_coefficient_error[0], b.henry_coefficient_error[0]
                )
                print(
                    f"{name}: |biased - uniform| = {diff / sigma:.2f} combined errors"
                )
        print(flush=True)


if __name__ == "__main__":
    main()
