"""The benchmark scripts run (short smoke modes; their numbers are not asserted)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_ablation_smoke():
    """The ablation trains and evaluates all four variants and prints its table."""
    out = _smoke("ablation.py")
    for name in ("plain multi-task", "+ selective L2", "+ DBS", "+ selective L2 + DBS"):
        assert f"| {name} |" in out


def _smoke(script: str, *extra: str) -> str:
    return subprocess.run(
        [sys.executable, script, "--smoke", *extra],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout


def test_relax_optimizers_smoke():
    """FIRE, L-BFGS and BFGS relax the MOF and Pt(111) cases and print ratios."""
    out = _smoke("relax_optimizers.py")
    assert "FIRE / lbfgs: steps" in out and "FIRE / bfgs: steps" in out


def test_screening_scale_smoke():
    """The scale benchmark runs end to end: timing, rerun planning, kill -9."""
    out = _smoke("screening_scale.py")
    assert "workflow overhead ratio" in out and "within the run" in out
    assert "rerun of 24 stored materials" in out and "48 reused" in out
    assert "kill -9" in out or "finished before it could be killed" in out


def test_slab_protocol_smoke():
    """The slab convergence table prints one row per setting."""
    out = _smoke("slab_protocol.py")
    assert "| H | 2 | p(1x1) |" in out and "| H | 3 | p(1x1) |" in out


def test_widom_speed_smoke():
    """The Widom benchmark times both sides and compares their energies."""
    out = _smoke("widom_speed.py")
    assert "sevenn naive loop" in out and "largest energy difference" in out
    out = _smoke("widom_speed.py", "--dispersion", "d3bj")
    assert "rigid host (setup included)" in out and "full sum with gradient" in out


def test_d3_speed_smoke():
    """The D3 benchmark times ours (as predict and the calculator call it, and
    with per-atom energies) and simple-dftd3 on both systems and prints
    ratios; all give the same energy."""
    out = _smoke("d3_speed.py")
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 2 and "ratio as called" in out
    assert all(float(r.split("|")[-2]) < 1e-6 for r in rows)  # max dE, eV


def test_md_speed_smoke():
    """The MD benchmark times both sides on the same dynamics."""
    out = _smoke("md_speed.py")
    assert "ASE Langevin + sevenn loop" in out and "ratio" in out
    loop, ours = out.split("final temperature, mean over runs: loop ")[1].split(
        " K, ours "
    )
    # the same momenta and random draws: the same temperatures (float32)
    assert abs(float(loop) - float(ours.split()[0])) < 1.0


def test_neb_speed_smoke():
    """The NEB benchmark times both sides and prints the barriers."""
    out = _smoke("neb_speed.py")
    assert "ASE NEB + FIRE + sevenn loop" in out and "barriers (eV), ours:" in out


def test_roofline_smoke(tmp_path):
    """The roofline runs on Si64: peaks, the pass and its kernel classes; the
    JSON holds them and the plot (its own run overlaid as "before") is a PNG."""
    import json

    data, png = tmp_path / "roofline.json", tmp_path / "roofline.png"
    out = _smoke(
        "roofline.py", "--json", str(data), "--plot", str(png), "--before", str(data)
    )
    assert "% of peak FLOP/s" in out and "| mm/addmm |" in out
    run = json.loads(data.read_text())["runs"][0]
    assert run["peak"]["gflops"] > 0 and run["peak"]["gbps"] > 0
    kernels = run["inputs"]["Si64"]["kernels"]
    assert kernels["mm/addmm"]["flop"] > 0 and kernels["cat"]["bytes"] > 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_roofline_byte_count(monkeypatch):
    """The byte estimate by hand: inputs + output, an in-place destination
    once, views nothing; element-wise FLOPs one per (broadcast) output element.
    Counting the destination of ``copy_`` as an output too (planted) gives
    three copies' bytes instead of read + write."""
    import importlib

    import torch

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    roofline = importlib.import_module("roofline")
    a, b, dst = torch.ones(64, 128), torch.ones(128, 32), torch.empty(64, 128)
    size = 64 * 128 * 4
    with roofline.ByteCounter() as count:
        torch.mm(a, b)
        dst.copy_(a)
        torch.cat([a, a])
        a.view(-1).t()
        torch.ones(1, 128) * a
    assert count.bytes["mm/addmm"] == size + 128 * 32 * 4 + 64 * 32 * 4
    assert count.bytes["copy"] == 2 * size
    assert count.bytes["cat"] == 4 * size
    assert "views" not in count.bytes and count.calls["views"] == 2
    assert count.flops["mul"] == 64 * 128
    assert count.bytes["mul"] == 128 * 4 + 2 * size
    monkeypatch.setattr(torch._C.FunctionSchema, "is_mutable", False)
    with roofline.ByteCounter() as planted:
        dst.copy_(a)
    assert planted.bytes["copy"] == 3 * size


def _gpu_check(out: Path, **env) -> tuple[int, list[dict], str]:
    import json
    import os

    proc = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh"), "--cpu-dry-run", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable, **env},
    )
    steps = json.loads((out / "steps.json").read_text())
    return proc.returncode, steps, (out / "gpu_check.txt").read_text()


def test_gpu_check_cpu_dry_run(tmp_path):
    """The prepared GPU check runs end to end on the CPU with tiny sizes: every
    step passes and the report holds each benchmark's figures."""
    rc, steps, report = _gpu_check(tmp_path)
    assert [s["step"] for s in steps] == [
        "environment",
        "install",
        "pytest_gpu",
        "static_small_7net-0",
        "static_large_7net-0",
        "static_small_l3i5",
        "relax",
        "capacity",
        "roofline",
    ]
    assert rc == 0, report
    assert all(s["exit"] == 0 for s in steps)
    for figure in (
        "torch 2.",
        "ratio e3nn",
        "ratio cueq",
        "cueq over e3nn",
        "structures/s",
        "ASE FIRE + sevenn loop",
        "largest cell (c) 7net-0",
        "ms/step",
        "out-of-memory split (e)",
        "% of peak FLOP/s",
    ):
        assert figure in report, figure


def test_gpu_check_fails_soft(tmp_path):
    """With a broken interpreter every step fails, each is recorded with its
    exit status, the script goes on to the end and exits non-zero."""
    rc, steps, report = _gpu_check(tmp_path, PYTHON="false")
    assert rc == 1
    assert len(steps) == 9
    assert sum(s["exit"] != 0 for s in steps) >= 8
    assert report.count("=== ") == 9


def test_thermal_speed_smoke():
    """The QHA benchmark runs both sides and prints the ratio and the
    profiles of both sides."""
    out = _smoke("thermal_speed.py")
    assert "ratio loop / ours" in out and "where the time goes, ours" in out
    assert "where the time goes, phonopy + sevenn loop" in out


def test_mof_screen_speed_smoke():
    """The CoRE MOF throughput benchmark runs both sides and prints the ratio."""
    out = _smoke("mof_screen_speed.py")
    assert "shared / loop throughput ratio" in out


def test_relax_torch_sim_smoke():
    """The torch-sim comparison relaxes two cells on both sides, prints their
    step counts, our step's breakdown and the ratios (torch-sim is optional)."""
    import importlib.util

    if importlib.util.find_spec("torch_sim") is None:
        import pytest

        pytest.skip("torch-sim is not installed (pip install sevenomni[bench])")
    out = _smoke("relax_torch_sim.py")
    assert "| Mg2 | 2 | 5 (not converged) | not converged |" in out
    assert "model forward+backward" in out and "cell filter" in out
    assert "static ours" in out and "relax  ours" in out and "ratio" in out
