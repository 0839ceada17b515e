#!/usr/bin/env bash
# Data-parallel training speed on this machine: for each network, in one
# run and alternating, `bpnet --threads 1 bench` (one process, one thread),
# `bpnet --threads 2 bench` (one process, two threads) and
# `mpirun -np 2 bpnet --threads 1 bench` (two ranks of one thread, the same
# global batch split in two); prints ms/step (median over rounds), the
# speed-up of 2 ranks over 1 thread, and the gradient all-reduce's time
# alone and its share of a 2-rank step. The last column is the ceiling of
# the method on this machine: two independent one-thread processes run at
# once, each on half the batch with no communication at all (the slower
# one's ms/step against one process on the whole batch). Builds bpnet in release mode with
# the mpi feature (BPNET=path times another binary built with it).
# Timing is never asserted in tests.
#
#   bash bench/mpi.sh                 # 3 rounds
#   ROUNDS=5 NETS="w1 w3" bash bench/mpi.sh
#   MPI_ARGS="--mca mpi_yield_when_idle 1" bash bench/mpi.sh   # busy machine
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
nets=${NETS:-"w1 w3 wide"}
if [ -z "${BPNET:-}" ]; then
  cargo build --release -q -p bpnet-cli --features mpi
  BPNET=target/release/bpnet
fi
# shellcheck disable=SC2206
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none ${MPI_ARGS:-})
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

args_of() {
  case "$1" in
    w1) echo "--dims 784,100,100,100,10 --activation sigmoid --batch-norm --batch-size 60 --optimizer sgd --steps ${STEPS_W1:-2000}" ;;
    w3) echo "--dims 784,1024,1024,1024,10 --activation relu --batch-norm --batch-size 256 --optimizer adam --steps ${STEPS_W3:-60}" ;;
    wide) echo "--dims 784,2048,2048,10 --activation relu --batch-norm --batch-size 512 --optimizer adam --steps ${STEPS_WIDE:-30}" ;;
  esac
}

# Field $2 of the JSON line that `bpnet bench --json` prints last.
field() { tail -n 1 | python3 -c "import json,sys; v=json.load(sys.stdin)['$1']; print(v if v is not None else '')"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "| network | 1 process x 1 thread (ms/step) | 1 process x 2 threads | 2 ranks x 1 thread | speed-up of 2 ranks over 1 thread | all-reduce alone (ms) | share of a 2-rank step | ceiling: 2 independent half-batch processes |"
echo "|---|---|---|---|---|---|---|---|"
for net in $nets; do
  a=$(args_of "$net")
  half=$(echo "$a" | awk '{for (i = 1; i <= NF; i++) { if ($(i-1) == "--batch-size") $i = int($i / 2) } print}')
  t1=(); t2=(); r2=(); ar=(); hp=()
  for _ in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    t1+=("$("$BPNET" --threads 1 bench $a --json | field ms_per_step)")
    # shellcheck disable=SC2086
    t2+=("$("$BPNET" --threads 2 bench $a --json | field ms_per_step)")
    # shellcheck disable=SC2086
    out=$("${MPIRUN[@]}" -np 2 "$BPNET" --threads 1 bench $a --json)
    r2+=("$(echo "$out" | field ms_per_step)")
    ar+=("$(echo "$out" | field all_reduce_ms)")
    # shellcheck disable=SC2086
    "$BPNET" --threads 1 bench $half --json | field ms_per_step >"$tmp/a" &
    # shellcheck disable=SC2086
    "$BPNET" --threads 1 bench $half --json | field ms_per_step >"$tmp/b"
    wait
    hp+=("$(sort -g "$tmp/a" "$tmp/b" | tail -n 1)")
  done
  m1=$(printf '%s\n' "${t1[@]}" | median)
  m2=$(printf '%s\n' "${t2[@]}" | median)
  mr=$(printf '%s\n' "${r2[@]}" | median)
  ma=$(printf '%s\n' "${ar[@]}" | median)
  mh=$(printf '%s\n' "${hp[@]}" | median)
  awk -v n="$net" -v a="$m1" -v b="$m2" -v c="$mr" -v d="$ma" -v h="$mh" \
    'BEGIN { printf "| %s | %.3f | %.3f | %.3f | %.2fx | %.3f | %.0f%% | %.3f (%.2fx) |\n", n, a, b, c, a / c, d, 100 * d / c, h, a / h }'
done
