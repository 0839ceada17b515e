#!/usr/bin/env bash
# Data ingestion: `bpnet train --epochs 1` load + preprocessing time and peak
# memory on a 1,000,000 x 21 numeric CSV (20 features + a class label),
# against polars.read_csv and pandas.read_csv in the same run (each reader in
# its own process, rounds in alternating order, median of per-round ratios).
# Builds bpnet in release mode (BPNET=path times another binary instead) and
# the Python environment (tools/data_bench_env.sh). Not a test: timings are
# never asserted. The table in docs/PERFORMANCE.md comes from this script.
#
#   bash bench/csv_ingest.sh                    # 3 rounds, 1,000,000 rows
#   ROUNDS=5 ROWS=200000 bash bench/csv_ingest.sh
#   BPNET=/tmp/bpnet-old bash bench/csv_ingest.sh
#   PARQUET=1 bash bench/csv_ingest.sh          # also the table as Parquet
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BPNET:-}" ]; then
  cargo build --release -q -p bpnet-cli
  BPNET=target/release/bpnet
fi
PY="$(bash tools/data_bench_env.sh | tail -n 1)"
exec "$PY" bench/csv_ingest.py --bpnet "$BPNET" --rows "${ROWS:-1000000}" --cols "${COLS:-20}" \
  --rounds "${ROUNDS:-3}" --dir "${DIR:-${TMPDIR:-/tmp}/bpnet-ingest}" ${PARQUET:+--parquet}
