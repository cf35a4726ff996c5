"""Roofline of the model's energy + forces + stress pass, per kernel class.

What is timed is the model alone: ``Potential.evaluate`` (the call
:func:`sevenomni_core.batch.predict` makes: edge vectors, forward, the
gradient, forces and stress) on graphs built and collated beforehand, so
neighbour lists, batching and D3 are not in it.  Inputs: a rattled 64-atom
Si crystal, a rattled 256-atom fcc Al cell, 200 small bulk cells in one batch
(``_structures.small_bulk``) and Mg-MOF-74 (162 atoms).

In the same process, for each thread count (``torch.set_num_threads``):

- the machine's peaks: a square matrix product of the model's dtype (2048^3
  on the CPU, 8192^3 on a GPU; 2 n^3 FLOPs) for FLOP/s, and a large tensor's
  ``copy_`` (bytes = read + write, 256 MiB each way, 1 GiB on a GPU) for
  bandwidth; best of a few rounds;
- the pass's time (median of ``--rounds``, no profiler attached);
- one pass under ``torch.profiler`` (``with_flops=True, record_shapes=True``):
  self time per aten op (device time on a GPU), grouped in kernel classes
  (mm/addmm, bmm, mul, add/sub, cat, gather, scatter, copy, ...);
- one pass under a dispatch mode that sees every aten op below autograd
  with its real tensors, for the bytes.

FLOPs: matrix products (mm, addmm, bmm, ...) as the profiler counts them
(2 m n k); element-wise arithmetic (mul, add, div, silu, ...) one FLOP per
output element, from the dispatch pass (the profiler counts a broadcast
``mul`` by its first input only).  Data movement (cat, copy, gather,
scatter, views) does no arithmetic: zero FLOPs.

Bytes moved, an estimate: for each op, the sizes of its tensor inputs
(tensor lists included) plus the sizes of its outputs, times their item size;
an in-place op's destination counts once; views move nothing.  It counts
each operand once, as if caches held nothing between ops and everything
within one: a lower bound for gathers with scattered indices, an upper bound
for operands that stay in cache from the previous op.

Each class's achieved GFLOP/s and GB/s are its FLOPs and bytes over its self
time; its arithmetic intensity is FLOPs / bytes.  It is against the memory
limit when its intensity is left of the ridge point (peak FLOP/s / peak
bandwidth), else against the compute limit; "% roof" is its rate over the
roof at its intensity (its bandwidth over the peak for classes without
FLOPs).  The whole pass: all FLOPs and bytes over its unprofiled time.

Times, on the CPU, are the process's CPU time per torch thread by default
(``--clock cpu``): on a quiet machine that is the wall time, and on a shared
one it leaves out the time other jobs held the cores (a pass whose CPU time
falls below 80 % of its wall time is flagged CONTENDED; with two threads on
two busy cores, OpenMP threads spin while waiting for each other and the
numbers mean little).  The kernels' self times are the profiler's, scaled
by the profiled pass's CPU time over its wall time; the profiler's own
overhead stays in them.  On a GPU, wall time (synchronised) and device time.

    python benchmarks/roofline.py [--model 7net-0] [--dtype float32]
        [--device cpu|cuda] [--threads 1 2] [--rounds 5] [--clock cpu|wall]
        [--json PATH] [--plot PATH] [--before PATH] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from _structures import small_bulk
from ase.build import bulk
from ase.io import read
from torch.utils._python_dispatch import TorchDispatchMode

MOF = Path(__file__).resolve().parents[1] / "workflows" / "structures" / "Mg-MOF-74.cif"

# kernel classes: (class, op names); an op not listed is "other"
CLASSES = [
    ("mm/addmm", "mm addmm addmv mv matmul linear dot"),
    ("bmm", "bmm baddbmm einsum"),
    ("mul", "mul mul_"),
    ("add/sub", "add add_ sub sub_ rsub neg"),
    ("div", "div div_ reciprocal"),
    ("silu/sigmoid", "silu silu_backward sigmoid sigmoid_backward"),
    ("sin/cos/pow", "sin cos pow exp sqrt rsqrt clamp_min clamp where"),
    ("cat", "cat stack"),
    ("gather", "index index_select gather take embedding"),
    (
        "scatter",
        "index_add index_add_ index_put index_put_ _index_put_impl_ "
        "scatter scatter_add scatter_add_ scatter_reduce",
    ),
    ("copy", "copy_ clone contiguous _to_copy to"),
    ("sum/norm", "sum mean linalg_vector_norm linalg_norm norm"),
    (
        "alloc/fill",
        "empty empty_like empty_strided zeros zeros_like ones_like "
        "new_zeros new_empty new_full fill_ zero_ full scalar_tensor",
    ),
    (
        "views",
        "view reshape _reshape_alias _unsafe_view transpose t permute "
        "expand expand_as squeeze unsqueeze slice select narrow as_strided "
        "split split_with_sizes unbind alias detach resolve_conj resolve_neg "
        "lift_fresh",
    ),
]
CLASS_OF = {op: name for name, ops in CLASSES for op in ops.split()}
MATRIX = {"mm/addmm", "bmm"}
ELEMENTWISE = {"mul", "add/sub", "div", "silu/sigmoid", "sin/cos/pow"}
NO_DATA = {"views", "alloc/fill"}


def kernel_class(name: str) -> str:
    """The class of a profiler event or dispatch op name ("aten::mm",
    "aten.mm.default"); autograd's own bookkeeping is "autograd"."""
    if name.startswith("aten::"):
        return CLASS_OF.get(name[6:], "other")
    if name.startswith("aten."):
        return CLASS_OF.get(name.split(".")[1], "other")
    if "Backward" in name or name.startswith("autograd::") or name == "detach":
        return "autograd"
    return "other"


def inputs() -> dict[str, list]:
    """The four inputs: name -> structures (one batch each)."""
    si = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    al = bulk("Al", "fcc", a=4.05, cubic=True) * (4, 4, 4)
    si.rattle(0.03, seed=1)
    al.rattle(0.03, seed=2)
    return {
        "Si64": [si],
        "Al256": [al],
        "small_bulk x200": small_bulk(200),
        "Mg-MOF-74": [read(MOF)],
    }


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> tuple[float, float]:
    """One call's wall time and the process's CPU time per torch thread (s)."""
    sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    wall = time.perf_counter() - w0
    return wall, (time.process_time() - c0) / torch.get_num_threads()


def elapsed(wall: float, cpu: float, clock: str) -> float:
    """The time a rate is computed from: ``clock`` "cpu" or "wall"."""
    return cpu if clock == "cpu" else wall


def best_time(fn, rounds: int, device: torch.device, clock: str) -> float:
    fn()
    return min(elapsed(*timed(fn, device), clock) for _ in range(rounds))


def peaks(device: torch.device, dtype: torch.dtype, smoke: bool, clock: str) -> dict:
    """Measured peak FLOP/s (matrix product) and bandwidth (``copy_``)."""
    n = 512 if smoke else (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = best_time(lambda: torch.mm(a, b), 2 if smoke else 3, device, clock)
    flops = 2 * n**3 / t
    mib = 16 if smoke else (1024 if device.type == "cuda" else 256)
    numel = (mib << 20) // dtype.itemsize
    src = torch.ones(numel, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    t = best_time(lambda: dst.copy_(src), 3 if smoke else 5, device, clock)
    bandwidth = 2 * numel * dtype.itemsize / t
    return {
        "gemm_n": n,
        "gflops": flops / 1e9,
        "copy_mib": numel * dtype.itemsize / 2**20,
        "gbps": bandwidth / 1e9,
        "ridge_flop_per_byte": flops / bandwidth,
    }


def _nbytes(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (list, tuple)):
        return sum(_nbytes(y) for y in x)
    return 0


def _numel(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel()
    if isinstance(x, (list, tuple)):
        return sum(_numel(y) for y in x)
    return 0


class ByteCounter(TorchDispatchMode):
    """Bytes (inputs + outputs) and element-wise FLOPs per kernel class."""

    def __init__(self):
        super().__init__()
        self.bytes = defaultdict(int)
        self.flops = defaultdict(int)
        self.calls = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func._schema.name.split("::")[-1]
        cls = CLASS_OF.get(name, "other")
        self.calls[cls] += 1
        if cls in NO_DATA:
            return out
        operands = [*args, *(kwargs or {}).values()]
        moved = sum(_nbytes(x) for x in operands)
        if not func._schema.is_mutable:  # in place: the destination counts once
            moved += _nbytes(out)
        self.bytes[cls] += moved
        if cls in ELEMENTWISE:
            self.flops[cls] += _numel(out)
        return out


def profile_pass(run, device: torch.device, clock: str) -> dict:
    """Self time and profiler FLOPs per class, from one profiled pass.

    With the "cpu" clock, the profiler's self times (wall) are scaled by the
    pass's CPU time per thread over its wall time: the share of the pass the
    process was on its cores.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True, with_flops=True) as prof:
        wall, cpu = timed(run, device)
    running = cpu / wall if clock == "cpu" else 1.0
    out = defaultdict(
        lambda: {"time_s": 0.0, "time_profiled_s": 0.0, "flop_profiler": 0}
    )
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CPU:
            continue  # device kernels: counted through their op's device time
        cls = out[kernel_class(e.name)]
        if device.type == "cuda":
            seconds = e.self_device_time_total / 1e6
        else:
            seconds = e.self_cpu_time_total / 1e6
        cls["time_profiled_s"] += seconds
        cls["time_s"] += seconds * running
        cls["flop_profiler"] += e.flops or 0
    return dict(out)


def measure(pot, batch: dict, rounds: int, peak: dict, clock: str) -> dict:
    """The pass's time, and per class: time, FLOPs, bytes, rates, limit."""
    device = pot.device

    def run():
        return pot.evaluate(batch, compute_forces=True, compute_stress=True)

    run()  # warm-up
    walls, cpus = zip(*(timed(run, device) for _ in range(rounds)), strict=True)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    seconds = elapsed(wall, cpu, clock)
    classes = profile_pass(run, device, clock)
    profiled = sum(c["time_s"] for c in classes.values())
    counter = ByteCounter()
    with counter:
        run()
    kernels = {}
    for name, c in classes.items():
        flop = c["flop_profiler"] if name in MATRIX else counter.flops.get(name, 0)
        kernels[name] = {
            **c,
            "calls": counter.calls.get(name, 0),
            "flop": flop,
            "bytes": counter.bytes.get(name, 0),
        }
    for name in counter.calls.keys() - kernels.keys():  # not seen by the profiler
        kernels[name] = {
            "time_s": 0.0,
            "time_profiled_s": 0.0,
            "flop_profiler": 0,
            "calls": counter.calls[name],
            "flop": counter.flops.get(name, 0),
            "bytes": counter.bytes.get(name, 0),
        }
    for k in kernels.values():
        k.update(rates(k["flop"], k["bytes"], k["time_s"], peak))
    flop = sum(k["flop"] for k in kernels.values())
    moved = sum(k["bytes"] for k in kernels.values())
    whole = {
        "time_s": seconds,
        "wall_s": wall,
        "cpu_per_thread_s": cpu,
        "profiled_self_s": profiled,
        "flop": flop,
        "flop_profiler": sum(k["flop_profiler"] for k in kernels.values()),
        "bytes": moved,
        **rates(flop, moved, seconds, peak),
        "time_shares": time_shares(kernels),
    }
    return {"pass": whole, "kernels": kernels}


def time_shares(kernels: dict) -> dict:
    """Shares of the kernels' self time: against the compute roof, against
    the memory roof, and in ops that move no data (views, allocation,
    autograd's bookkeeping: overhead)."""
    total = sum(k["time_s"] for k in kernels.values()) or 1.0
    shares = dict.fromkeys(("compute", "memory", "overhead"), 0.0)
    for k in kernels.values():
        shares[k["limit"].split()[0]] += k["time_s"] / total
    return shares


def rates(flop: float, moved: float, seconds: float, peak: dict) -> dict:
    """Achieved rates, intensity, which limit applies and the share of it."""
    gflops = flop / seconds / 1e9 if seconds > 0 else 0.0
    gbps = moved / seconds / 1e9 if seconds > 0 else 0.0
    intensity = flop / moved if moved else 0.0
    if moved == 0:
        limit, share = "overhead (no data)", 0.0
    elif flop == 0:
        limit, share = "memory (no FLOPs)", gbps / peak["gbps"]
    elif intensity < peak["ridge_flop_per_byte"]:
        limit, share = "memory", gflops / (intensity * peak["gbps"])
    else:
        limit, share = "compute", gflops / peak["gflops"]
    return {
        "gflops": gflops,
        "gbps": gbps,
        "intensity": intensity,
        "limit": limit,
        "roof_share": share,
        "peak_flops_share": gflops / peak["gflops"],
    }


def table(
    name: str, threads: int, info: dict, result: dict, top: int, cpu: bool
) -> None:
    p = result["pass"]
    print(
        f"\n{name}: {info['atoms']} atoms, {info['edges']} edges, "
        f"{info['structures']} structure(s), {threads} thread(s)"
    )
    print(
        f"pass (model forward + backward only, graphs built before): "
        f"{p['time_s'] * 1e3:.1f} ms (wall {p['wall_s'] * 1e3:.1f} ms), "
        f"{p['flop'] / 1e9:.2f} GFLOP "
        f"({p['flop_profiler'] / 1e9:.2f} counted by the profiler), "
        f"{p['bytes'] / 1e9:.2f} GB, {p['gflops']:.1f} GFLOP/s = "
        f"{100 * p['peak_flops_share']:.1f} % of peak FLOP/s, {p['gbps']:.1f} GB/s, "
        f"intensity {p['intensity']:.2f} FLOP/B: {p['limit']} side of the ridge, "
        f"at {100 * p['roof_share']:.0f} % of that roof; the kernels' self times "
        f"below sum to {p['profiled_self_s'] * 1e3:.1f} ms (profiler overhead "
        "included)"
    )
    print(
        "self time against the compute roof {compute:.0%}, the memory roof "
        "{memory:.0%}, in ops moving no data {overhead:.0%}".format(**p["time_shares"])
    )
    if cpu and p["cpu_per_thread_s"] < 0.8 * p["wall_s"]:
        print(
            f"CONTENDED: CPU time per thread is {p['cpu_per_thread_s'] * 1e3:.0f} "
            f"ms of {p['wall_s'] * 1e3:.0f} ms wall: other jobs held the cores"
        )
    print(
        f"| kernel class | self ms | % | calls | GFLOP | GB | GFLOP/s | GB/s "
        f"| FLOP/B | limit | % roof |\n|{'---|' * 11}"
    )
    total = sum(k["time_s"] for k in result["kernels"].values()) or 1.0
    rows = sorted(result["kernels"].items(), key=lambda kv: -kv[1]["time_s"])
    for cls, k in rows[:top]:
        print(
            f"| {cls} | {k['time_s'] * 1e3:.1f} | {100 * k['time_s'] / total:.0f} "
            f"| {k['calls']} | {k['flop'] / 1e9:.3f} | {k['bytes'] / 1e9:.3f} "
            f"| {k['gflops']:.1f} | {k['gbps']:.1f} | {k['intensity']:.2f} "
            f"| {k['limit']} | {100 * k['roof_share']:.0f} |"
        )


def plot(data: dict, path: str, before: dict | None) -> None:
    """Log-log roofline: one panel per (threads, input); kernels as labelled
    dots, the pass as a star; ``before`` in hollow markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = data["runs"]
    names = list(runs[0]["inputs"])
    fig, axes = plt.subplots(
        len(runs),
        len(names),
        figsize=(3.6 * len(names), 3.2 * len(runs)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    old = {r["threads"]: r for r in before["runs"]} if before else {}
    colors = plt.get_cmap("tab10")
    order = [c for c, _ in CLASSES] + ["other", "autograd"]
    for row, run in zip(axes, runs, strict=True):
        for ax, name in zip(row, names, strict=True):
            ref = old.get(run["threads"])
            for r, style in ((ref, "--"), (run, "-")):
                if r is None:
                    continue
                pk = r["peak"]
                x = np.logspace(-2, 3, 50)
                ax.plot(
                    x,
                    np.minimum(pk["gflops"], x * pk["gbps"]),
                    "k" + style,
                    lw=1,
                    alpha=0.5 if r is ref else 1.0,
                )
                if r is run:
                    ax.text(
                        1.2e-2,
                        pk["gflops"] * 1.2,
                        f"{pk['gflops']:.0f} GFLOP/s, {pk['gbps']:.0f} GB/s",
                        fontsize=6,
                        ha="left",
                    )
            for r, hollow in ((ref, True), (run, False)):
                if r is None or name not in r["inputs"]:
                    continue
                res = r["inputs"][name]
                for cls, k in res["kernels"].items():
                    if k["flop"] == 0 or k["time_s"] == 0:
                        continue
                    color = colors(order.index(cls) % 10)
                    ax.scatter(
                        k["intensity"],
                        k["gflops"],
                        s=24,
                        facecolors="none" if hollow else color,
                        edgecolors=color,
                    )
                    if not hollow:
                        ax.annotate(
                            cls,
                            (k["intensity"], k["gflops"]),
                            fontsize=6,
                            xytext=(3, 2),
                            textcoords="offset points",
                        )
                p = res["pass"]
                ax.scatter(
                    p["intensity"],
                    p["gflops"],
                    marker="*",
                    s=120,
                    facecolors="none" if hollow else "crimson",
                    edgecolors="crimson",
                    zorder=3,
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(1e-2, 1e3)
            ax.set_title(f"{name}, {run['threads']} thread(s)", fontsize=8)
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("FLOP / byte", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("GFLOP/s", fontsize=8)
    meta = data["meta"]
    title = (
        f"{meta['model']} {meta['dtype']} on {meta['device_name']}: kernels (dots), "
        "pass (star)"
    )
    if before:
        title += "; before: hollow, dashed roof"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5, help="timed passes")
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        help="time rates by the process's CPU time per thread (default on "
        "the CPU: a shared machine's other jobs do not count) or wall time "
        "(default, and always, on a GPU)",
    )
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--plot", help="write the roofline PNG here")
    parser.add_argument("--before", help="a previous run's JSON to overlay")
    parser.add_argument("--top", type=int, default=10, help="classes per table")
    parser.add_argument(
        "--smoke", action="store_true", help="Si64 only, one thread, one round"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import sevenomni_core
    from sevenomni_core.batch.inputs import prepare
    from sevenomni_core.data import collate
    from sevenomni_core.model import load_model

    if args.smoke:
        args.threads, args.rounds = args.threads[:1], 1
    pot = load_model(args.model, device=args.device, dtype=args.dtype)
    device = pot.device
    clock = "wall" if device.type != "cpu" else (args.clock or "cpu")
    structures = inputs()
    if args.smoke:
        structures = {"Si64": structures["Si64"]}
    batches, info = {}, {}
    for name, group in structures.items():
        graphs = [prepare(pot, a, None, name)[1] for a in group]
        batch = collate(graphs)
        batches[name] = {k: v.to(device) for k, v in batch.items()}
        info[name] = {
            "structures": len(group),
            "atoms": sum(len(a) for a in group),
            "edges": sum(int(g["edge_index"].shape[1]) for g in graphs),
        }
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    )
    meta = {
        "model": args.model,
        "dtype": args.dtype,
        "device": str(device),
        "device_name": device_name,
        "torch": torch.__version__,
        "sevenomni_core": str(Path(sevenomni_core.__file__).parent),
        "timed": "Potential.evaluate on collated graphs: the model's forward "
        "and backward (forces, stress); no neighbour lists, no D3",
        "clock": clock,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": os.getloadavg()[0],
    }
    print(
        f"roofline: {args.model} {args.dtype} on {device} ({device_name}), torch "
        f"{torch.__version__}, sevenomni_core from {meta['sevenomni_core']}, "
        f"load {meta['load_before']:.2f}, times by the {clock} clock"
    )
    dtype = pot.dtype
    runs = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = peaks(device, dtype, args.smoke, clock)
        print(
            f"\n== {threads} thread(s): peak {peak['gflops']:.1f} GFLOP/s "
            f"({peak['gemm_n']}^3 {args.dtype} matrix product), "
            f"{peak['gbps']:.1f} GB/s (copy_ of {peak['copy_mib']:.0f} MiB, "
            f"read + write); ridge {peak['ridge_flop_per_byte']:.1f} FLOP/B"
        )
        results = {}
        for name, batch in batches.items():
            results[name] = {
                **info[name],
                **measure(pot, batch, args.rounds, peak, clock),
            }
            table(
                name, threads, info[name], results[name], args.top, device.type == "cpu"
            )
        runs.append({"threads": threads, "peak": peak, "inputs": results})
    meta["load_after"] = os.getloadavg()[0]
    print(
        f"\nload average (1 min) before {meta['load_before']:.2f}, "
        f"after {meta['load_after']:.2f}"
    )
    print(
        "\n| input | threads | ms | GFLOP/s | % of peak FLOP/s | FLOP/B | side "
        "| time: memory-side kernels | compute-side | no data |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        for name, res in run["inputs"].items():
            p = res["pass"]
            print(
                f"| {name} | {run['threads']} | {p['time_s'] * 1e3:.1f} "
                f"| {p['gflops']:.1f} | {100 * p['peak_flops_share']:.1f} "
                f"| {p['intensity']:.2f} | {p['limit']} "
                "| {memory:.0%} | {compute:.0%} | {overhead:.0%} |".format(
                    **p["time_shares"]
                )
            )
    data = {"meta": meta, "runs": runs}
    if args.json:
        Path(args.json).write_text(json.dumps(rounded(data), indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        before = json.loads(Path(args.before).read_text()) if args.before else None
        plot(data, args.plot, before)
        print(f"wrote {args.plot}")


def rounded(x):
    """``x`` with every float to 4 significant digits (a small JSON)."""
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


if __name__ == "__main__":
    main()
