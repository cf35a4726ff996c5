#!/usr/bin/env bash
# One prepared GPU check: install, `pytest -m gpu`, then every GPU benchmark,
# each step under its own time limit (together under 9 minutes), fail-soft:
# a failing step is recorded and the next one runs.
#
#   benchmarks/gpu_check.sh [--cpu-dry-run] OUTDIR
#
# OUTDIR/gpu_check.txt  every step's output, in order, with its exit status
# OUTDIR/steps.json     one entry per step: name, exit status, seconds
# OUTDIR/roofline.json, roofline.png  the roofline step's numbers and plot
# The exit status is 0 when every step passed, else 1.
#
# --cpu-dry-run runs the same steps on the CPU with tiny sizes (the test
# suite does this, so the script is known to work before a GPU is lent).
# WHEELS=folder installs from local wheels (no index) on a machine without
# network access; without it, missing packages come from the package index.
set -u

dry=0
if [ "${1:-}" = "--cpu-dry-run" ]; then
    dry=1
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--cpu-dry-run] OUTDIR" >&2
    exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root" || exit 2
report="$out/gpu_check.txt"
: >"$report"
steps=()
failed=0
python=${PYTHON:-python}

step() { # step NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS rc
    {
        echo
        echo "=== $name (limit ${limit} s): $*"
    } >>"$report"
    # through bash -c, so that the functions below can be steps
    PYTHONUNBUFFERED=1 timeout --kill-after=5 "$limit" bash -c '"$@"' step "$@" \
        >>"$report" 2>&1
    rc=$?
    local dt=$((SECONDS - t0))
    echo "--- $name: exit $rc after ${dt} s" >>"$report"
    [ $rc -ne 0 ] && failed=1
    steps+=("{\"step\": \"$name\", \"exit\": $rc, \"seconds\": $dt}")
}

if [ $dry -eq 1 ]; then
    device=cpu
    n_small=4 n_large=1 n_relax=2 repeats=1 models=7net-0
    l3i5_backends=e3nn # cuEquivariance's CPU code generation for l3i5: ~40 s
    capacity=(--max-atoms 40 --max-batch 4 --time-limit 20)
    relax_extra=(--max-steps 5)
    roofline=(--smoke)
else
    device=cuda
    n_small=500 n_large=64 n_relax=100 repeats=3 models=7net-0,7net-l3i5,omni
    l3i5_backends=e3nn,cueq
    capacity=(--max-atoms 4000000 --max-batch 1024 --time-limit 25)
    relax_extra=()
    roofline=(--threads 1 --rounds 3)
fi

show_environment() {
    "$python" - <<'EOF'
import importlib.metadata as md
import platform

import torch

print("python", platform.python_version(), "torch", torch.__version__,
      "CUDA", torch.version.cuda, "cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("GPU", p.name, f"{p.total_memory / 2**30:.1f} GiB")
for name in ("sevenomni", "sevenn", "e3nn", "cuequivariance-torch",
             "cuequivariance-ops-torch-cu12"):
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "not installed")
EOF
    nvidia-smi 2>/dev/null || echo "nvidia-smi: not available"
}

install_packages() {
    local needs="import sevenomni_core, sevenn, cuequivariance_torch"
    [ $dry -eq 0 ] && needs="$needs, cuequivariance_ops_torch"
    if "$python" -c "$needs" 2>/dev/null; then
        echo "already installed"
        return 0
    fi
    local src=()
    [ -n "${WHEELS:-}" ] && src=(--no-index --find-links "$WHEELS")
    "$python" -m pip install -q "${src[@]}" -e ".[test,cueq]" || return 1
    if [ $dry -eq 0 ]; then
        "$python" -m pip install -q "${src[@]}" cuequivariance-ops-torch-cu12 || return 1
    fi
    "$python" -c "$needs"
}

bench() { "$python" "$here/$1" "${@:2}"; }
export -f show_environment install_packages bench
export dry python here

step environment 20 show_environment
step install 60 install_packages
step pytest_gpu 60 "$python" -m pytest -m gpu -q -p no:cacheprovider
step static_small_7net-0 60 bench batch_static.py --device $device --n $n_small \
    --repeats $repeats --backend e3nn,cueq
step static_large_7net-0 60 bench batch_static.py --device $device --n $n_large \
    --repeats $repeats --backend e3nn,cueq --large
step static_small_l3i5 60 bench batch_static.py --device $device --n $n_small \
    --repeats $repeats --backend $l3i5_backends --model 7net-l3i5
step relax 60 bench batch_relax.py --device $device --n $n_relax "${relax_extra[@]}"
step capacity 90 bench gpu_capacity.py --device $device --models $models \
    "${capacity[@]}"
step roofline 60 bench roofline.py --device $device "${roofline[@]}" \
    --json "$out/roofline.json" --plot "$out/roofline.png"

{
    echo "["
    for i in "${!steps[@]}"; do
        sep=","
        [ "$i" -eq $((${#steps[@]} - 1)) ] && sep=""
        echo "  ${steps[$i]}$sep"
    done
    echo "]"
} >"$out/steps.json"
echo "gpu_check: $(grep -c '"exit": 0' "$out/steps.json")/${#steps[@]} steps passed; $report"
exit $failed
