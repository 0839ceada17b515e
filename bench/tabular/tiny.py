"""`bpnet tune` (or, with --train, `bpnet train`) on tiny tables: a seeded sample of ROWS training rows of each
set (its seed's training file), searched with a fixed number of trials (no
time limit, so every run is deterministic), scored on the set's whole test
file. Compares binaries or options on the same samples.

Usage: python tiny.py DATA_DIR OUT.json --run NAME=BINARY[,ARG...] [--run ...]
       [--rows 50] [--trials 40] [--seeds 5] [--half choice|held-out|all] [--train]

Each sample keeps at least 3 rows of every class of the training file that
has 3 (so that 3 stratified folds can be made), the rest drawn at random.
The test rows scored are those whose categories (of the columns with text)
all occur in the sample (`bpnet eval` refuses a category the model never
saw); their number is recorded. A run that fails (bpnet's error; an eval
that meets a category only the sample's validation rows held) is recorded
with score None.
"""

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def runs():
    out = []
    for i, a in enumerate(sys.argv):
        if a == "--run":
            name, rest = sys.argv[i + 1].split("=", 1)
            parts = rest.split(",")
            out.append((name, parts[0], parts[1:]))
    return out


def sample(train, target, task, rows, seed, path):
    with open(train, newline="") as f:
        r = list(csv.reader(f))
    head, body = r[0], r[1:]
    rng = random.Random(seed)
    idx = list(range(len(body)))
    rng.shuffle(idx)
    chosen = []
    if task == "classify":
        t = head.index(target)
        for c in sorted({row[t] for row in body}):
            of = [i for i in idx if body[i][t] == c]
            if len(of) >= 3:
                chosen += of[:3]
    chosen += [i for i in idx if i not in set(chosen)][: max(0, rows - len(chosen))]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(body[i] for i in sorted(chosen))
    return head, [body[i] for i in chosen]


def number(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def seen_rows(test, head, kept, target, path):
    """Writes the rows of `test` whose text cells all occur in `kept`; their count."""
    text = [j for j, c in enumerate(head) if c != target and any(r[j] != "" and not number(r[j]) for r in kept)]
    seen = {j: {r[j] for r in kept} for j in text}
    with open(test, newline="") as f:
        r = list(csv.reader(f))
    rows = [row for row in r[1:] if all(row[j] in seen[j] or row[j] == "" for j in text)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(r[0])
        w.writerows(rows)
    return len(rows)


def main():
    data, out = sys.argv[1], sys.argv[2]
    rows, trials = int(arg("--rows", "50")), arg("--trials", "40")
    seeds, half = int(arg("--seeds", "5")), arg("--half", "choice")
    with open(os.path.join(data, "sets.json")) as f:
        sets = json.load(f)
    results = []
    for name, s in sets.items():
        if half != "all" and s["half"] != half:
            continue
        for seed in range(seeds):
            split = seed % 3
            train = os.path.join(data, f"{name}.s{split}.train.csv")
            test = os.path.join(data, f"{name}.s{split}.test.csv")
            with tempfile.TemporaryDirectory() as d:
                small = os.path.join(d, "small.csv")
                head, kept = sample(train, s["target"], s["task"], rows, seed, small)
                scored = seen_rows(test, head, kept, s["target"], os.path.join(d, "test.csv"))
                test = os.path.join(d, "test.csv")
                for label, binary, extra in runs():
                    model = os.path.join(d, f"{label}.safetensors")
                    how = ["train"] if "--train" in sys.argv else ["tune", "--trials", trials, "--cv", "3"]
                    cmd = [binary, "--threads", "2", *how, "--data", small, "--target", s["target"], "--task",
                           s["task"], "--seed", str(seed), "--impute", "mean",
                           "--out", model, "--quiet", "--overwrite"] + extra
                    began = time.perf_counter()
                    p = subprocess.run(cmd, capture_output=True, text=True)
                    secs = time.perf_counter() - began
                    score = None
                    if p.returncode == 0:
                        p = subprocess.run([binary, "eval", "--model", model, "--data", test, "--json"],
                                           capture_output=True, text=True)
                    if p.returncode == 0:
                        m = json.loads(p.stdout.strip().splitlines()[-1])["metrics"]
                        score = m["accuracy"] if s["task"] == "classify" else m["r2"]
                    results.append({"set": name, "seed": seed, "method": label, "score": score, "seconds": secs,
                                    "test_rows": scored,
                                    "error": None if p.returncode == 0 else p.stderr.strip()[-300:]})
                    shown = "failed" if score is None else f"{score:.4f}"
                    print(f"{name:12} seed {seed} {label:10} {shown:>8} {secs:6.2f} s", flush=True)
                    with open(out, "w") as f:
                        json.dump({"rows": rows, "trials": trials, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
