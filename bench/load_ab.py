"""Two or more bpnet binaries (or settings) loading the same file, side by side.

Each configuration runs `bpnet train --data FILE --epochs 1 --json --quiet`
in turn, in alternating order each round, and its `load_seconds` and
`load_peak_memory_bytes` are collected. Prints the medians, the ranges and
the median per-round ratio of each configuration's load time to the first's.
Not a test: nothing is asserted.

    python3 bench/load_ab.py ROUNDS FILE "old|/tmp/bpnet-old|" "new|target/release/bpnet|"
    python3 bench/load_ab.py 9 t.csv "a|target/release/bpnet|" "b|target/release/bpnet|BPNET_MEMORY=200000000"

A configuration is `label|binary|ENV=VALUE,ENV2=VALUE` (the environment part
may be empty).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile


def run(binary, data, env, work):
    out = subprocess.run(
        [binary, "train", "--data", data, "--epochs", "1", "--json", "--quiet",
         "--out", os.path.join(work, "m.safetensors"), "--overwrite"],
        capture_output=True, text=True, cwd=work, env=env, check=True,
    )
    j = json.loads(out.stdout.strip().splitlines()[-1])
    return j["load_seconds"], j["load_peak_memory_bytes"]


def main():
    rounds, data, cfgs = int(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3:]
    res = {c: [] for c in cfgs}
    with tempfile.TemporaryDirectory() as work:
        for r in range(rounds):
            for c in cfgs if r % 2 == 0 else cfgs[::-1]:
                _, binary, envs = c.split("|")
                env = dict(os.environ)
                env.update(kv.split("=", 1) for kv in envs.split(",") if kv)
                res[c].append(run(binary if os.sep not in binary else os.path.abspath(binary), data, env, work))
    first = res[cfgs[0]]
    for c in cfgs:
        s = [x[0] for x in res[c]]
        m = [x[1] / 1e6 for x in res[c]]
        ratio = statistics.median(y[0] / x[0] for x, y in zip(first, res[c]))
        print(f"{c.split('|')[0]}: load s median {statistics.median(s):.3f} ({min(s):.3f}-{max(s):.3f}), "
              f"load peak MB median {statistics.median(m):.1f} ({min(m):.1f}-{max(m):.1f}), "
              f"time ratio to the first {ratio:.3f}")


if __name__ == "__main__":
    main()
