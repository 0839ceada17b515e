#!/usr/bin/env bash
# Candidate defaults, each run on the CHOICE half only (3 seeds): the
# evidence for the defaults bpnet ships. Results: results/cand-NAME.json;
# python summarize.py results/cand-*.json shows them side by side.
# Usage: bash bench/tabular/candidates.sh   (after run.sh has derived the data and built the binary)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="$HERE/.venv/bin/python"
BIN="${BPNET_BIN:-$(cd "$HERE/../.." && pwd)/target/release/bpnet}"
cd "$HERE"
mkdir -p results
run() {
    local name="$1"; shift
    "$PY" run.py data "results/cand-$name.json" --bpnet "$BIN" --half choice --methods bpnet \
        --label "$name" --bpnet-args "$*"
}
run base
run adamw-wd1e-4 --optimizer adamw --weight-decay 1e-4
run wide-dropout --hidden 256,256 --dropout 0.1
run no-bn --no-batch-norm
run batch128 --batch-size 128
run lr3e-3-cosine --lr 0.003 --schedule cosine
run patience20 --patience 20
run val20 --val-split 0.2
# Second round (after the first): combinations of the first round's best.
run p20-b128 --patience 20 --batch-size 128
run p20-b64 --patience 20 --batch-size 64
run p20-nobn --patience 20 --no-batch-norm
run p30-b128-e200 --patience 30 --batch-size 128 --epochs 200
# Third round (2026-12-03, on top of the defaults then: batch 128, patience 20;
# results kept as docs/tabular/cand2-*.json): ensembles, regularization, width.
# Run then with a binary whose default was one network; --ensemble 1 keeps
# the single-network candidates the same with today's default.
# The winner, --ensemble 5, became the default for tables of <= 50,000 rows.
run2() {
    local name="$1"; shift
    "$PY" run.py data "results/cand2-$name.json" --bpnet "$BIN" --half choice --methods bpnet \
        --label "$name" --bpnet-args "$*"
}
run2 base --ensemble 1
run2 ens5 --ensemble 5
run2 ens5-wd --ensemble 5 --optimizer adamw --weight-decay 1e-3
run2 wd1e-2 --ensemble 1 --optimizer adamw --weight-decay 1e-2
run2 drop02 --ensemble 1 --dropout 0.2
run2 h256-drop02 --ensemble 1 --hidden 256,256 --dropout 0.2
run2 ens5-drop01 --ensemble 5 --dropout 0.1
run2 h64 --ensemble 1 --hidden 64,64
run2 h512 --ensemble 1 --hidden 512
run2 ens5-h256-d02 --ensemble 5 --hidden 256,256 --dropout 0.2
# Fourth round (2026-12-03, on top of the defaults then: an ensemble of 5):
# label smoothing, on the choice half's classification sets (results kept
# as docs/tabular/cand3-*.json). Not adopted.
run3() {
    local name="$1"; shift
    "$PY" run.py data "results/cand3-$name.json" --bpnet "$BIN" --half choice --methods bpnet \
        --sets pima,turnout,hdma,benefits --label "$name" --bpnet-args "$*"
}
run3 base
run3 ls01 --label-smoothing 0.1
run3 ls02 --label-smoothing 0.2
# Feature scalings tried without changing bpnet (pilot_scaling.py rescales
# copies of the data; results kept as docs/tabular/pilot-*.json). Not adopted.
for mode in robust robust-noclip zscore-clip; do
    "$PY" pilot_scaling.py data "results/data-$mode" "$mode"
    "$PY" run.py "results/data-$mode" "results/pilot-$mode.json" --bpnet "$BIN" --half choice --methods bpnet \
        --label "$mode" --bpnet-args "--scaling none"
done
"$PY" run.py data results/pilot-ens5.json --bpnet "$BIN" --half choice --methods bpnet --label ens5 --bpnet-args "--ensemble 5"
