"""Data ingestion benchmark: bpnet against polars and pandas on one table.

Makes (once, in --dir) a CSV of --rows rows x --cols numeric features plus an
integer class label (`label`, 4 classes from a linear rule), then, --rounds
times and in alternating order, runs each reader in its own process:

  polars   polars.read_csv(path)                      (time inside the process)
  pandas   pandas.read_csv(path)                      (time inside the process)
  bpnet    bpnet train --data path --epochs 1 --json  ('load_seconds': reading,
           splitting and preprocessing into the f32 matrices; 'wall': the
           whole command, one epoch of training and the model file included)

Peak memory is each process's maximum resident set (wait4's ru_maxrss); for
bpnet also the peak right after loading ('load_peak_memory_bytes'). Python's
own footprint with the library imported is printed as 'baseline'. Prints the
medians and the median over rounds of the per-round ratios bpnet / polars.
Run through bench/csv_ingest.sh, which builds bpnet and makes the venv.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

READERS = {
    "polars": "import polars as pl\nf = lambda p: pl.read_csv(p)",
    "pandas": "import pandas as pd\nf = lambda p: pd.read_csv(p)",
}

# With --parquet: the same table as Parquet (written by polars, zstd).
PARQUET_READER = "import polars as pl\nf = lambda p: pl.read_parquet(p)"


def make_csv(path, rows, cols, seed=0):
    """Features: standard normal with 6 decimals; label: argmax of 4 fixed linear scores."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((rows, cols)), 6).astype(np.float64)
    w = rng.standard_normal((cols, 4))
    label = np.argmax(x @ w, axis=1)
    df = pl.DataFrame({f"f{j}": x[:, j] for j in range(cols)}).with_columns(pl.Series("label", label))
    df.write_csv(path, float_precision=6)


def run(cmd):
    """(stdout, wall seconds, peak RSS bytes) of a child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')}")
    return out.decode(), wall, usage.ru_maxrss * 1024


# The child's own high-water mark (VmHWM). Not wait4's ru_maxrss: that also
# counts what the child held before exec, i.e. this process's memory at the
# fork (430 MB once numpy and polars are imported here).
HWM = ("import re\n"
       "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024)\n")


def python_reader(name, path, load=True):
    body = (READERS.get(name) or PARQUET_READER) + "\nimport time\n"
    if load:
        body += "t = time.perf_counter(); df = f(%r); print(time.perf_counter() - t)\n" % path
    else:
        body += "print(0.0)\n"
    out, _, _ = run([sys.executable, "-c", body + HWM])
    lines = out.strip().splitlines()
    return float(lines[-2]), int(lines[-1])


def bpnet_train(bpnet, path, work, i):
    model = os.path.join(work, f"m{i}.safetensors")
    cmd = [bpnet, "train", "--data", path, "--epochs", "1", "--json", "--quiet", "--out", model]
    out, wall, rss = run(cmd)
    summary = json.loads(out.strip().splitlines()[-1])
    for f in os.listdir(work):
        if f.startswith(f"m{i}."):
            os.remove(os.path.join(work, f))
    # A binary from before --json reported the load: the whole command's time
    # and peak stand in for it (an upper bound).
    load = summary.get("load_seconds") or wall
    # bpnet's own figures are its VmHWM (since 2026-12-03; ru_maxrss before).
    return load, wall, summary.get("load_peak_memory_bytes") or rss, summary.get("peak_memory_bytes") or rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpnet", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bpnet-ingest"))
    ap.add_argument("--parquet", action="store_true", help="also time the table as Parquet")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    path = os.path.join(a.dir, f"t{a.rows}x{a.cols + 1}.csv")
    if not os.path.exists(path):
        make_csv(path, a.rows, a.cols)
    size = os.path.getsize(path)
    matrix = a.rows * (a.cols + 1) * 4  # features + label as f32
    print(f"file {path}: {a.rows} rows x {a.cols + 1} columns, {size / 1e6:.1f} MB; "
          f"f32 matrix {matrix / 1e6:.1f} MB; {os.cpu_count()} cores")
    base = {n: python_reader(n, path, load=False)[1] for n in READERS}
    t = {k: [] for k in ["polars", "pandas", "bpnet_load", "bpnet_wall"]}
    rss = {k: [] for k in ["polars", "pandas", "bpnet_load", "bpnet_all"]}
    with tempfile.TemporaryDirectory() as work:
        for r in range(a.rounds):
            order = ["polars", "pandas", "bpnet"]
            if r % 2:
                order.reverse()
            for name in order:
                if name == "bpnet":
                    load, wall, lrss, arss = bpnet_train(a.bpnet, path, work, r)
                    t["bpnet_load"].append(load)
                    t["bpnet_wall"].append(wall)
                    rss["bpnet_load"].append(lrss)
                    rss["bpnet_all"].append(arss)
                else:
                    s, m = python_reader(name, path)
                    t[name].append(s)
                    rss[name].append(m)
    med = {k: statistics.median(v) for k, v in t.items()}
    peak = {k: max(v) for k, v in rss.items()}
    ratio = statistics.median(b / p for b, p in zip(t["bpnet_load"], t["polars"]))
    ratio_pd = statistics.median(b / p for b, p in zip(t["bpnet_load"], t["pandas"]))
    print("| reader | seconds (median) | peak RSS MB | baseline MB |")
    print("|---|---|---|---|")
    for n in READERS:
        print(f"| {n}.read_csv | {med[n]:.3f} | {peak[n] / 1e6:.0f} | {base[n] / 1e6:.0f} |")
    print(f"| bpnet load + preprocess | {med['bpnet_load']:.3f} | {peak['bpnet_load'] / 1e6:.0f} | |")
    print(f"| bpnet train --epochs 1 (whole command) | {med['bpnet_wall']:.3f} | {peak['bpnet_all'] / 1e6:.0f} | |")
    print(f"bpnet load / polars: {ratio:.2f}x (median of {a.rounds} per-round ratios); "
          f"bpnet load / pandas: {ratio_pd:.2f}x")
    print(f"bpnet peak after load / f32 matrix: {peak['bpnet_load'] / matrix:.2f}x")
    print("rounds:", json.dumps({k: [round(x, 3) for x in v] for k, v in t.items()}))
    if a.parquet:
        parquet_rounds(a, path)


def parquet_rounds(a, csv_path):
    """polars.read_parquet against bpnet train on the same table as Parquet."""
    import polars as pl

    path = csv_path[:-4] + ".parquet"
    if not os.path.exists(path):
        pl.read_csv(csv_path).write_parquet(path)
    t = {"polars": [], "bpnet": []}
    peak = {"polars": 0, "bpnet": 0}
    with tempfile.TemporaryDirectory() as work:
        for r in range(a.rounds):
            for name in (["polars", "bpnet"] if r % 2 == 0 else ["bpnet", "polars"]):
                if name == "bpnet":
                    load, _, lrss, _ = bpnet_train(a.bpnet, path, work, r)
                    t["bpnet"].append(load)
                    peak["bpnet"] = max(peak["bpnet"], lrss)
                else:
                    s, m = python_reader("polars_parquet", path)
                    t["polars"].append(s)
                    peak["polars"] = max(peak["polars"], m)
    ratio = statistics.median(b / p for b, p in zip(t["bpnet"], t["polars"]))
    print(f"parquet {path}: {os.path.getsize(path) / 1e6:.1f} MB")
    print(f"| polars.read_parquet | {statistics.median(t['polars']):.3f} | {peak['polars'] / 1e6:.0f} |")
    print(f"| bpnet load + preprocess (Parquet) | {statistics.median(t['bpnet']):.3f} | {peak['bpnet'] / 1e6:.0f} |")
    print(f"bpnet Parquet load / polars.read_parquet: {ratio:.2f}x (median of {a.rounds} per-round ratios)")
    print("parquet rounds:", json.dumps({k: [round(x, 3) for x in v] for k, v in t.items()}))


if __name__ == "__main__":
    main()
