#!/usr/bin/env bash
# bpnet against PyTorch on every workload of docs/PERFORMANCE.md, side by side
# (see bench/compare.py for the options). Builds bpnet in release mode and
# creates bench/.venv with torch from PyPI if needed (VENV=... reuses another).
#
#   bash bench/compare.sh                      # W1-W4 and the GEMMs, 2 and 1 threads, 5 rounds
#   bash bench/compare.sh --only W1,W2 --rounds 9
#   bash bench/compare.sh --scaling --threads 2   # batch and width sweeps + docs/scaling.svg
#   bash bench/compare.sh --only I1,I1-row,I3     # saved models against ONNX Runtime
#   bash bench/compare.sh --end-to-end --rounds 3 # bpnet train --data mnist against PyTorch
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-bench/.venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, matplotlib, onnxruntime" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==2.15.0" numpy matplotlib "onnxruntime==1.32.0" onnx
fi
cargo build --release -q
exec "$venv/bin/python" bench/compare.py "$@"
