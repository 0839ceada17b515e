"""Compares rules for choosing the answer of `bpnet tune` from its kept
leaderboards (run.py --keep DIR): each rule picks a trial, which is refit on
the training file as the tuner refits (`bpnet train` with the trial's
settings, 100 epochs, the default ensemble of 5) and scored on the test file.

Usage: python rules.py DATA_DIR KEEP_DIR OUT.json --bpnet PATH

Rules (on the rows with a `both` value, the re-scored trials):
  search  the best search score among complete trials (no re-scoring);
  both    the best mean over both splits (what `bpnet tune` does);
  fresh   the best score on the second split alone.
The leaderboard prints learning rate and weight decay to 4 significant
digits, so a refit here can differ slightly from the tuner's own refit;
every rule is refit the same way, so the rules compare fairly.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def flags(row):
    depth = int(row["depth"])
    f = ["--hidden", ",".join([row["width"]] * depth), "--activation", row["activation"],
         "--optimizer", row["optimizer"], "--lr", row["lr"], "--weight-decay", row["weight_decay"],
         "--batch-size", row["batch_size"], "--epochs", "100"]
    bn = row["batch_norm"]
    f += ["--no-batch-norm"] if depth == 0 or bn == "none" else ["--batch-norm"] + (["--bn-after"] if bn == "after" else [])
    if depth > 0:
        f += ["--dropout", row["dropout"]]
    return f


def fit_eval(binary, s, train, test, seed, row):
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "m.safetensors")
        cmd = [binary, "--threads", "2", "train", "--data", train, "--target", s["target"], "--impute", "mean",
               "--task", s["task"], "--seed", str(seed), "--out", model, "--quiet"] + flags(row)
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return None
        out = subprocess.run([binary, "--threads", "1", "eval", "--model", model, "--data", test, "--json"],
                             check=True, capture_output=True, text=True).stdout
        m = json.loads(out.strip().splitlines()[-1])["metrics"]
        return m["accuracy"] if s["task"] == "classify" else m["r2"]


def leaderboards(data, keep):
    """Each kept leaderboard in KEEP (run.py --keep), in name order, as
    (stem, set name, seed, the set's sets.json entry, its rows)."""
    with open(os.path.join(data, "sets.json")) as f:
        sets = json.load(f)
    for name in sorted(os.listdir(keep)):
        stem = name.replace(".leaderboard.csv", "")
        set_name, seed = stem.rsplit(".s", 1)
        with open(os.path.join(keep, name), newline="") as f:
            rows = list(csv.DictReader(f))
        yield stem, set_name, seed, sets[set_name], rows


def main():
    data, keep, out = sys.argv[1:4]
    binary = arg("--bpnet")
    results = []
    for stem, set_name, seed, s, rows in leaderboards(data, keep):
        metric = list(rows[0].keys())[2]
        complete = [r for r in rows if r["pruned"] == "false" and not r["failed"]]
        rescored = [r for r in complete if r["both"]]
        picks = {"search": max(complete, key=lambda r: (float(r[metric]), -int(r["trial"])))}
        if rescored:
            picks["both"] = max(rescored, key=lambda r: (float(r["both"]), -int(r["trial"])))
            picks["fresh"] = max(rescored, key=lambda r: (float(r["rescored"]), -int(r["trial"])))
        scored = {}
        tr, te = (os.path.join(data, f"{stem}.{p}.csv") for p in ("train", "test"))
        for rule, row in picks.items():
            if row["trial"] not in scored:
                scored[row["trial"]] = fit_eval(binary, s, tr, te, int(seed), row)
            results.append({"set": set_name, "seed": int(seed), "rule": rule, "trial": int(row["trial"]),
                            "origin": row["origin"], "score": scored[row["trial"]], "half": s["half"]})
            print(f"{set_name:14} seed {seed} {rule:7} trial {row['trial']:>6} {row['origin']:17} {scored[row['trial']]}",
                  flush=True)
        with open(out, "w") as f:
            json.dump({"results": results}, f, indent=1)


if __name__ == "__main__":
    main()
