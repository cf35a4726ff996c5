"""The benchmark scripts run (short smoke modes; their numbers are not asserted)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_ablation_smoke():
    """The ablation trains and evaluates all four variants and prints its table."""
    out = subprocess.run(
        [sys.executable, "ablation.py", "--smoke"],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    for name in ("plain multi-task", "+ selective L2", "+ DBS", "+ selective L2 + DBS"):
        assert f"| {name} |" in out
