"""Screening at scale: ``sevenomni run`` against the bare batched engine.

Generates N small bulk cells (2-16 atoms, rattled and strained prototypes)
in one extxyz file, then in one process:

1. the bare engine: :func:`sevenomni_core.batch.relax` (cell and positions)
   then :func:`~sevenomni_core.batch.predict` on the relaxed cells;
2. ``sevenomni run`` of a spec with ``properties: [relax, static]`` and the
   same relaxation settings, on the embedded store;
3. the rerun of that spec with everything stored (planning time);
4. planning time at N/4 and N/2 too, and the store's size, to extrapolate
   to 10^5 materials;
5. a ``kill -9`` of a second ``sevenomni run`` process in the middle of its
   batched relaxation, then a rerun: what was stored is kept and reused,
   and only the rest is relaxed.

Prints times and ratios (workflow / engine).  The machine is shared and
noisy: ``--repeats`` interleaves engine and workflow runs and reports
medians.

    python benchmarks/screening_scale.py [--n 2000] [--model 7net-0] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import torch
from _structures import small_bulk
from ase.io import write

RELAX = {"fmax": 0.05, "max_steps": 300}


def spec_text(model: str, file: str) -> str:
    return (
        f"model: {model}\ndevice: cpu\n"
        f"relax: {{fmax: {RELAX['fmax']}, max_steps: {RELAX['max_steps']}}}\n"
        f"structures:\n  - file: {file}\nproperties: [relax, static]\n"
    )


def engine(structures, pot) -> float:
    """The bare engine on the same work; returns seconds."""
    from sevenomni_core.batch import predict, relax

    start = time.perf_counter()
    results = relax(structures, model=pot, relax_cell=True, **RELAX)
    predict([r.atoms for r in results if r.atoms is not None], model=pot)
    return time.perf_counter() - start


#: Seconds spent inside the engine's relax and predict during ``workflow``.
INSIDE = {"engine": 0.0}


def _timed(function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            INSIDE["engine"] += time.perf_counter() - start

    return wrapper


def workflow(spec: Path, store: Path) -> tuple[float, str]:
    """``sevenomni run`` in this process; returns seconds and its output.

    The time spent inside the engine's ``relax`` and ``predict`` calls is
    added to :data:`INSIDE`, so the workflow layer's own cost can be read
    from the same run (robust to the load of a shared machine).
    """
    import sevenomni_core.batch as jobs  # where the Makers find the engines
    from sevenomni_flows.cli import main

    real = jobs.relax, jobs.predict
    jobs.relax, jobs.predict = _timed(real[0]), _timed(real[1])
    buf = StringIO()
    start = time.perf_counter()
    try:
        with redirect_stdout(buf):
            main(["run", str(spec), "--store", str(store)])
    finally:
        jobs.relax, jobs.predict = real
    return time.perf_counter() - start, buf.getvalue()


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"{pattern!r} not in the run's output:\n{text[-2000:]}")
    return float(match.group(1))


def stored_relaxations(store: Path) -> dict[str, str]:
    """Completed relaxation keys of a store, with when each was written."""
    from sevenomni_flows.run import open_store
    from sevenomni_flows.stores.results import results_store

    results = results_store(open_store(store))
    return {
        d["key"]: d["updated_at"]
        for d in results.query(
            {"property": "relax", "state": "completed"},
            properties=["key", "updated_at"],
        )
    }


def kill_and_rerun(folder: Path, spec: Path, n: int, fraction: float) -> dict:
    """kill -9 a run once ``fraction`` of its relaxations are stored; rerun."""
    store = folder / "killed"
    shutil.rmtree(store, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    exe = Path(sys.executable).parent / "sevenomni"
    proc = subprocess.Popen(
        [str(exe), "run", str(spec), "--store", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    before: dict[str, str] = {}
    while proc.poll() is None and len(before) < fraction * n:
        time.sleep(0.5)
        if (store / "sevenomni").exists():
            try:
                before = stored_relaxations(store)
            except Exception:  # the writer holds the database for a moment
                continue
    if proc.poll() is not None:
        return {}  # it finished first: too small to kill in the middle
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = stored_relaxations(store)
    seconds, out = workflow(spec, store)
    after = stored_relaxations(store)
    untouched = sum(1 for k, t in kept.items() if after.get(k) == t)
    return {
        "seen_before_kill": len(before),
        "kept": len(kept),
        "untouched_after_rerun": untouched,
        "to_relax": int(number(r"\((\d+) structures to relax\)", out)),
        "reused": int(number(r"(\d+) results reused", out)),
        "completed": int(number(r"(\d+) completed", out)),
        "rerun_s": seconds,
    }


def extrapolate(plan_s: dict, store: Path, n: int, jobs: int) -> None:
    """Linear extrapolation of planning time and store size to 10^5 materials."""
    size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    parts = sorted(plan_s)
    slope = (plan_s[parts[-1]] - plan_s[parts[0]]) / (parts[-1] - parts[0])
    print(f"store on disk: {size / 1e6:.1f} MB ({size / n / 1e3:.1f} kB per material)")
    print(
        "extrapolated to 100000 materials: "
        f"plan {plan_s[parts[-1]] + slope * (100_000 - parts[-1]):.0f} s, "
        f"store {size / n * 100_000 / 1e9:.2f} GB, "
        f"jobs {jobs} with one chunk (2 per chunk with structures_per_job)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument(
        "--fmax",
        type=float,
        default=RELAX["fmax"],
        help="eV/Å; a large value makes each relaxation one evaluation, which "
        "measures the workflow layer against the cheapest engine work",
    )
    parser.add_argument("--max-steps", type=int, default=RELAX["max_steps"])
    parser.add_argument("--smoke", action="store_true", help="n=24, for CI")
    parser.add_argument(
        "--workdir", default=None, help="keep files here (default: a temporary one)"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated phases to skip: engine (the separate engine run), "
        "timing (engine and run; then WORKDIR/run0 must hold a finished run), "
        "plan, kill",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    RELAX["fmax"], RELAX["max_steps"] = args.fmax, args.max_steps
    if args.smoke:
        args.n, args.repeats = 24, 1
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from sevenomni_core.model import load_model

    pot = load_model(args.model, device="cpu")
    structures = small_bulk(args.n, seed=7)
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="screening_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        write(folder / "all.extxyz", structures)
        spec = folder / "spec.yaml"
        spec.write_text(spec_text(args.model, "all.extxyz"))
        atoms = sum(len(s) for s in structures)
        print(
            f"{args.n} structures ({atoms} atoms), {args.model}, cpu, "
            f"{torch.get_num_threads()} threads, relax {RELAX} then static"
        )
        engine_s, flow_s, inside = [], [], []
        out = ""
        for rep in range(0 if "timing" in skip else args.repeats):
            if "engine" not in skip:
                engine_s.append(engine(structures, pot))
            store = folder / f"run{rep}"
            INSIDE["engine"] = 0.0
            seconds, out = workflow(spec, store)
            inside.append(INSIDE["engine"])
            flow_s.append(seconds)
            print(
                f"  repeat {rep}: engine {engine_s[-1] if engine_s else 0:.1f} s, "
                f"sevenomni run {flow_s[-1]:.1f} s"
            )
        jobs = 2
        if flow_s:
            jobs = int(number(r"in (\d+) jobs", out))
            done = int(number(r"(\d+) completed", out))
            f = statistics.median(flow_s)
            print(
                f"sevenomni run:            {f:.1f} s  ({jobs} jobs, {done} completed)"
            )
        if engine_s:
            e = statistics.median(engine_s)
            print(f"engine (relax + predict): {e:.1f} s")
            print(f"workflow overhead ratio:  {f / e:.3f}  (goal <= 1.15)")
        if flow_s:
            i = statistics.median(inside)
            print(
                f"within the run: {i:.1f} s in relax + predict, {f - i:.1f} s in "
                f"the workflow layer; ratio {f / i:.3f}"
            )

        store = folder / "run0"
        plan_s = {}
        for part in () if "plan" in skip else (args.n // 4, args.n // 2, args.n):
            write(folder / f"first{part}.extxyz", structures[:part])
            part_spec = folder / f"spec{part}.yaml"
            part_spec.write_text(spec_text(args.model, f"first{part}.extxyz"))
            seconds, text = workflow(part_spec, store)
            plan_s[part] = number(r"planned in ([\d.]+) s", text)
            n_reused = int(number(r"(\d+) results reused", text))
            print(
                f"rerun of {part} stored materials: planned in {plan_s[part]:.2f} s, "
                f"whole command {seconds:.2f} s, {n_reused} reused"
            )
        if plan_s:
            extrapolate(plan_s, store, args.n, jobs)
        if "kill" in skip:
            return
        killed = kill_and_rerun(folder, spec, args.n, args.kill_at)
        if not killed:
            print("the second run finished before it could be killed (too small)")
            return
        print(
            f"kill -9 after {killed['seen_before_kill']} relaxations were seen "
            f"stored: {killed['kept']} kept; the rerun relaxed "
            f"{killed['to_relax']} structures, reused {killed['reused']} results, "
            f"left {killed['untouched_after_rerun']} of the kept ones untouched; "
            f"{killed['completed']} of {2 * args.n} calculations completed "
            f"({killed['rerun_s']:.1f} s)"
        )
        lost = killed["kept"] - killed["untouched_after_rerun"]
        print(
            f"recomputed structures: {killed['to_relax']}; stored results "
            f"recomputed: {lost}; lost: {2 * args.n - killed['completed']}"
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
