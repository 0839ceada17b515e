#!/usr/bin/env bash
# Accuracy cost of streaming (docs/STREAMING.md): the same generated table
# trained in memory and streamed with shuffle buffers of several sizes, in
# random row order and sorted by class (the hardest order for a streamed
# shuffle), each with SEEDS seeds; test accuracy on one separate test file.
#
#   BPNET=target/release/bpnet ROWS=200000 SEEDS="1 2 3" EPOCHS=5 bash bench/stream_accuracy.sh
set -euo pipefail
BPNET=${BPNET:-target/release/bpnet}
ROWS=${ROWS:-200000}
SEEDS=${SEEDS:-"1 2 3"}
EPOCHS=${EPOCHS:-5}
BUFFERS=${BUFFERS:-"1000 10000 50000"}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

python3 - "$DIR" "$ROWS" <<'EOF'
import random, sys
d, rows = sys.argv[1], int(sys.argv[2])
rng = random.Random(17)
def row():
    v = [rng.uniform(-10, 10) for _ in range(8)]
    kind = rng.choice("abcdefgh")
    s = v[0] - v[1] + 0.5 * v[2] * v[3] / 10 + (3 if kind in "ab" else 0) + rng.gauss(0, 1)
    label = "low" if s < -4 else "mid" if s < 4 else "high"
    return ",".join(f"{x:.3f}" for x in v) + f",{kind},{label}"
head = ",".join(f"f{i}" for i in range(8)) + ",kind,label\n"
train = [row() for _ in range(rows)]
test = [row() for _ in range(rows // 5)]
open(f"{d}/random.csv", "w").write(head + "\n".join(train) + "\n")
open(f"{d}/sorted.csv", "w").write(head + "\n".join(sorted(train, key=lambda r: r.rsplit(",", 1)[1])) + "\n")
open(f"{d}/test.csv", "w").write(head + "\n".join(test) + "\n")
EOF

acc() { tail -1 | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["test"]["accuracy"])'; }
echo "| order | training | seeds $SEEDS: test accuracy | mean |"
echo "|---|---|---|---|"
for order in random sorted; do
  for mode in memory $BUFFERS; do
    accs=()
    for seed in $SEEDS; do
      args=(train --data "$DIR/$order.csv" --test "$DIR/test.csv" --epochs "$EPOCHS" --patience 0 --seed "$seed" --ensemble 1 --quiet --json --out "$DIR/m.safetensors")
      if [ "$mode" = memory ]; then
        accs+=("$("$BPNET" "${args[@]}" --no-stream | acc)")
      else
        accs+=("$("$BPNET" "${args[@]}" --stream --shuffle-buffer "$mode" | acc)")
      fi
    done
    mean=$(python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; print('%.4f' % (sum(v)/len(v)))" "${accs[@]}")
    label=$([ "$mode" = memory ] && echo "in memory" || echo "streamed, buffer $mode rows")
    echo "| $order | $label | ${accs[*]} | $mean |"
  done
done
