#!/usr/bin/env bash
# The tabular benchmark end to end, in bounded time (about 10-20 minutes on
# a 2-core machine): the virtual environment, the data sets, the release
# binary, then bpnet's defaults, scikit-learn's MLP and a linear model on
# every set over 3 seeded splits, and the table (results/table.md).
#
# Usage: bash bench/tabular/run.sh [SEEDS]      (default 3)
# Candidate defaults were compared on the choice half only with
#   python run.py data results/cand-NAME.json --bpnet BIN --half choice --methods bpnet \
#       --label NAME --bpnet-args "--flags ..."
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SEEDS="${1:-3}"
PY="$(bash "$HERE/env.sh" | tail -n 1)"
cd "$HERE"
"$PY" derive.py data --seeds "$SEEDS"
cargo build --release -p bpnet-cli --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/bpnet"
mkdir -p results
"$PY" run.py data results/bpnet.json --bpnet "$BIN" --methods bpnet --seeds "$SEEDS"
"$PY" run.py data results/sklearn.json --methods mlp,linear --seeds "$SEEDS"
"$PY" summarize.py results/bpnet.json results/sklearn.json | tee results/table.md
