#!/usr/bin/env bash
# Wide tables (gene expression: tens of thousands of columns): time of
# `bpnet train` (default settings but one network, 1 epoch, model file written), `predict`,
# `eval` and `inspect` on CSVs of 10 rows and 20,000 to 200,000 numeric
# columns plus a two-class label, and the ratio to the same step at a
# quarter of the columns (4 for linear work, 16 for quadratic). Builds bpnet
# in release mode; BPNET=path times another binary instead. Prints a Markdown
# table (the one in docs/PERFORMANCE.md). Timing is never asserted in tests;
# tests/wide_columns.rs guards the growth by counting operations.
#
#   bash bench/wide_csv.sh                       # 3 rounds, minimum wall time
#   ROUNDS=5 COLUMNS="12500 50000 200000" bash bench/wide_csv.sh
#   BPNET=/tmp/bpnet-old COLUMNS="5000 20000" STEPS=train bash bench/wide_csv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
columns=${COLUMNS:-"20000 50000 60000 80000 200000"}
steps=${STEPS:-"train predict eval inspect"}
rows=${ROWS:-10}
if [ -z "${BPNET:-}" ]; then
  cargo build --release -q
  BPNET=target/release/bpnet
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# n columns g0..g{n-1} of numbers in [0, 1) with 3 decimals, then `label`.
make_csv() {
  awk -v n="$1" -v rows="$rows" 'BEGIN {
    srand(1)
    for (j = 0; j < n; j++) printf "g%d,", j
    print "label"
    for (r = 0; r < rows; r++) {
      for (j = 0; j < n; j++) printf "%.3f,", rand()
      print (r % 2 ? "a" : "b")
    }
  }' > "$2"
}

# Minimum wall seconds of `rounds` runs of the command.
best_of() {
  local best="" t0 t1
  for _ in $(seq "$rounds"); do
    t0=$(date +%s.%N)
    "$@" > /dev/null
    t1=$(date +%s.%N)
    best=$(awk -v a="$t0" -v b="$t1" -v m="$best" 'BEGIN { t = b - a; print (m == "" || t < m) ? t : m }')
  done
  printf '%.2f' "$best"
}

declare -A secs
for n in $columns; do
  csv="$dir/w$n.csv"
  model="$dir/w$n.safetensors"
  make_csv "$n" "$csv"
  for s in $steps; do
    case $s in
      train) cmd=("$BPNET" train --data "$csv" --epochs 1 --ensemble 1 --out "$model" --quiet) ;;
      predict) cmd=("$BPNET" predict --model "$model" --data "$csv") ;;
      eval) cmd=("$BPNET" eval --model "$model" --data "$csv") ;;
      inspect) cmd=("$BPNET" inspect "$model") ;;
    esac
    secs[$n,$s]=$(best_of "${cmd[@]}")
  done
done

header="| columns x $rows rows |"
rule="|---|"
for s in $steps; do
  header+=" $s s | x (1/4 columns) |"
  rule+="---|---|"
done
echo "$header"
echo "$rule"
for n in $columns; do
  line="| $n |"
  for s in $steps; do
    q=$((n / 4))
    ratio="—"
    if [ -n "${secs[$q,$s]:-}" ]; then
      ratio=$(awk -v a="${secs[$n,$s]}" -v b="${secs[$q,$s]}" 'BEGIN { printf "%.1f", a / b }')
    fi
    line+=" ${secs[$n,$s]} | $ratio |"
  done
  echo "$line"
done
