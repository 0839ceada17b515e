"""Compares refitting the single trial `bpnet tune` chooses with averaging
the predictions of several of its re-scored trials, from kept leaderboards
(run.py --keep DIR).

Usage: python blend.py DATA_DIR KEEP_DIR OUT.json --bpnet PATH [--members M]

Each re-scored trial is refit on the training file as the tuner refits it
(`bpnet train` with the trial's settings, 100 epochs, an ensemble of M
networks, default 5), its predictions on the test file are read back from
`bpnet predict`, and each rule averages the predictions of its trials
(probabilities for classifiers, values for regression):
  best   the trial with the best mean over both splits (what `bpnet tune` does);
  top3   the 3 best by that mean;
  all    every re-scored trial (the 3 best and the portfolio's);
  near   those within 0.01 of the best mean over both splits;
  upper  those at or above the median of that mean.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile

from rules import arg, flags, leaderboards


def refit_predict(binary, s, train, test, seed, row, members):
    """Test-file predictions of `row` refit on `train`: a list of
    probability rows (classify) or of values (regress); None if it failed."""
    with tempfile.TemporaryDirectory() as d:
        model, pred = os.path.join(d, "m.safetensors"), os.path.join(d, "p.csv")
        cmd = [binary, "--threads", "2", "train", "--data", train, "--target", s["target"], "--impute", "mean",
               "--task", s["task"], "--seed", str(seed), "--out", model, "--quiet",
               "--ensemble", str(members)] + flags(row)
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return None, None
        subprocess.run([binary, "--threads", "1", "predict", "--model", model, "--data", test, "--output", pred],
                       check=True, capture_output=True)
        with open(pred, newline="") as f:
            rows = list(csv.reader(f))
        head, body = rows[0], rows[1:]
        if s["task"] == "classify":
            labels = [h[2:] for h in head[1:]]
            return labels, [[float(v) for v in r[1:]] for r in body]
        return None, [float(r[0]) for r in body]


def truth(s, test):
    with open(test, newline="") as f:
        return [r[s["target"]] for r in csv.DictReader(f)]


def score(s, labels, preds, y):
    n = len(preds[0])
    if s["task"] == "classify":
        mean = [[sum(p[i][c] for p in preds) / len(preds) for c in range(len(labels))] for i in range(n)]
        hits = sum(labels[max(range(len(labels)), key=lambda c: m[c])] == t for m, t in zip(mean, y))
        return hits / n
    yv = [float(t) for t in y]
    mean = [sum(p[i] for p in preds) / len(preds) for i in range(n)]
    ybar = sum(yv) / n
    ss_res = sum((a - b) ** 2 for a, b in zip(yv, mean))
    ss_tot = sum((a - ybar) ** 2 for a in yv)
    return 1 - ss_res / ss_tot


def main():
    data, keep, out = sys.argv[1:4]
    binary = arg("--bpnet")
    members = int(arg("--members", "5"))
    results = []
    for stem, set_name, seed, s, rows in leaderboards(data, keep):
        rescored = [r for r in rows if r["pruned"] == "false" and not r["failed"] and r["both"]]
        if not rescored:
            continue
        rescored.sort(key=lambda r: (-float(r["both"]), int(r["trial"])))
        tr, te = (os.path.join(data, f"{stem}.{p}.csv") for p in ("train", "test"))
        y = truth(s, te)
        fitted = []
        labels = None
        for row in rescored:
            lab, p = refit_predict(binary, s, tr, te, int(seed), row, members)
            if p is not None:
                labels = lab or labels
                fitted.append((row, p))
        both = [float(r["both"]) for r, _ in fitted]
        preds = [p for _, p in fitted]
        near = [p for b, p in zip(both, preds) if b >= both[0] - 0.01]
        upper = [p for b, p in zip(both, preds) if b >= sorted(both)[len(both) // 2]]
        rules = {"best": preds[:1], "top3": preds[:3], "all": preds, "near": near, "upper": upper}
        for rule, preds in rules.items():
            sc = score(s, labels, preds, y)
            results.append({"set": set_name, "seed": int(seed), "rule": rule, "trials": len(preds),
                            "score": sc, "half": s["half"]})
            print(f"{set_name:14} seed {seed} {rule:5} {len(preds)} trials {sc:.4f}", flush=True)
        with open(out, "w") as f:
            json.dump({"results": results}, f, indent=1)


if __name__ == "__main__":
    main()
