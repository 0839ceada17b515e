#!/usr/bin/env bash
# Does `bpnet train --lr auto` (the learning-rate range test's minimum/10
# suggestion) train well?  For MNIST (first 10,000 training images, the 10,000
# test images) and the bundled tables (20% held out for testing), with and
# without batch normalization, plain SGD: the rate found and the test metric
# (accuracy, or R² for diabetes), beside a run at SGD's default rate 0.5.
# Prints a Markdown table.  Usage (after cargo build --release):
#     bash bench/lr_find_check.sh [path/to/bpnet] > table.md
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPNET="${1:-$ROOT/target/release/bpnet}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The test metric (accuracy or r2) from the JSON summary line, or the error.
metric() {
    local out="$1"
    if ! grep -q '^{' <<<"$out"; then
        echo "diverged"
        return
    fi
    local line
    line="$(grep '^{' <<<"$out" | tail -n 1)"
    local v
    v="$(grep -o '"test":{[^}]*' <<<"$line" | grep -o '"\(accuracy\|r2\)":[-0-9.e]*' | head -n 1 | cut -d: -f2)"
    printf '%.4f' "$v"
}

echo "| data | normalization | lr found (--lr auto) | test metric at that lr | test metric at lr 0.5 |"
echo "|---|---|---|---|---|"
run() {
    local name="$1" norm="$2"
    shift 2
    local common=(--optimizer sgd --norm "$norm" --seed 1 --json --overwrite)
    local auto fixed lr
    auto="$("$BPNET" train "$@" "${common[@]}" --lr auto --out "$WORK/a.safetensors" 2>&1 || true)"
    fixed="$("$BPNET" train "$@" "${common[@]}" --lr 0.5 --out "$WORK/f.safetensors" 2>&1 || true)"
    lr="$(grep -o 'training with lr [0-9.e+-]*' <<<"$auto" | awk '{print $4}' || true)"
    [ -n "$lr" ] || lr="none found"
    echo "| $name | $norm | $lr | $(metric "$auto") | $(metric "$fixed") |"
}
for norm in batch none; do
    run "MNIST (10,000 images, 3 epochs)" "$norm" --data mnist --limit 10000 --epochs 3 --hidden 100,100,100 --activation sigmoid --val-split 0
    run "iris (50 epochs)" "$norm" --data "$ROOT/data/iris.csv" --test-split 0.2 --epochs 50 --val-split 0
    run "wine (50 epochs)" "$norm" --data "$ROOT/data/wine.csv" --test-split 0.2 --epochs 50 --val-split 0
    run "diabetes (50 epochs, R²)" "$norm" --data "$ROOT/data/diabetes.csv" --test-split 0.2 --epochs 50 --val-split 0
done
