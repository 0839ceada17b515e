#!/usr/bin/env bash
# Runs `bpnet bench` and the PyTorch peer (bench/pytorch_mlp.py) alternately,
# ROUNDS times, on the same workload, and prints each round's ratio
# (bpnet ms/step / PyTorch ms/step) and the median, min and max.
#
# Usage: bash bench/side_by_side.sh [ROUNDS] [-- extra args for both, e.g. --batch-norm --steps 2000]
# Environment: TORCH_THREADS (default 2), VENV (default bench/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
shift || true
[ "${1:-}" = "--" ] && shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--dims 784,100,100,100,10 --activation sigmoid --batch-norm --batch-size 60 --optimizer sgd --steps 2000)
venv=${VENV:-bench/.venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==2.15.0" numpy
fi
cargo build --release -q
threads=${TORCH_THREADS:-2}
ratios=()
for r in $(seq 1 "$rounds"); do
  b=$(./target/release/bpnet bench "${args[@]}" --json | tail -n 1)
  t=$("$venv/bin/python" bench/pytorch_mlp.py "${args[@]}" --threads "$threads" | tail -n 1)
  bm=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['ms_per_step'])" "$b")
  tm=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['ms_per_step'])" "$t")
  ratio=$(python3 -c "print(f'{$bm/$tm:.4f}')")
  printf 'round %d: bpnet %.4f ms/step, pytorch (%s threads) %.4f ms/step, ratio %s\n' "$r" "$bm" "$threads" "$tm" "$ratio"
  ratios+=("$ratio")
done
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
r = [float(x) for x in sys.argv[1:]]
print(f"median ratio {statistics.median(r):.3f} (min {min(r):.3f}, max {max(r):.3f}, {len(r)} rounds)")
PY
