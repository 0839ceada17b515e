"""Runs the tabular benchmark: bpnet's defaults against scikit-learn's
MLP (defaults, with standard scaling and one-hot encoding) and a linear
model (ridge / logistic regression, defaults), on the sets derived by
derive.py, over several seeded train/test splits.

Usage: python run.py DATA_DIR OUT.json --bpnet PATH [--half choice|held-out|all]
       [--seeds N|a,b] [--sets a,b] [--methods bpnet,mlp,linear,realmlp,tune] [--bpnet-args "..."]
       [--label NAME] [--tune-time SECONDS] [--keep DIR] [--replay DIR]

Methods: bpnet (defaults, or --bpnet-args), mlp, linear, realmlp (pytabkit's
RealMLP-TD; needs the .venv-realmlp environment), tune (`bpnet tune --time
SECONDS --cv 3` on the training file, two trials at a time; its fit time is
the whole search plus the refit; --keep DIR keeps each search's leaderboard
and journal as DIR/SET.sSEED.leaderboard.csv and .tune.jsonl; --replay DIR
reads such a journal back instead of searching, so that only the re-scoring
and the refit run again, e.g. with another --blend-rule; --bpnet-args are
passed to it too).
--seeds N runs seeds 0..N-1; --seeds 1,2 runs those.

Every method sees the same train/test files. Missing numeric cells are
filled with the training mean (bpnet --impute mean; SimpleImputer), missing
categories with the most frequent (scikit-learn) or kept as their own
category (bpnet). Regression targets are standardized for the MLP (as
bpnet does; scikit-learn's MLPRegressor on raw prices does not train) and
mapped back. Scores: accuracy (classification) or R² (regression) on the
test file. Fit time: wall-clock seconds of fitting (for bpnet, the whole
`bpnet train` process, reading the CSV included), one thread each.
"""

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def matrices(header, rows, kinds):
    num = [j for j, k in enumerate(kinds) if k == "numeric"]
    cat = [j for j, k in enumerate(kinds) if k == "categorical"]
    xn = np.array([[float(r[j]) if r[j] != "" else np.nan for j in num] for r in rows], dtype=float).reshape(len(rows), len(num))
    xc = np.array([[r[j] if r[j] != "" else np.nan for j in cat] for r in rows], dtype=object).reshape(len(rows), len(cat))
    return np.concatenate([xn, xc], axis=1) if cat else xn, len(num), len(cat)


def kinds_of(rows, width):
    def numeric(j):
        for r in rows:
            if r[j] != "":
                try:
                    float(r[j])
                except ValueError:
                    return False
        return True
    return ["numeric" if numeric(j) else "categorical" for j in range(width)]


def sklearn_fit(method, task, train, test, seed):
    header, rows = train
    _, trows = test
    kinds = kinds_of(rows + trows, len(header) - 1)
    x, n_num, n_cat = matrices(header, rows, kinds)
    xt, _, _ = matrices(header, trows, kinds)
    pre = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), list(range(n_num)))]
        + ([("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
             list(range(n_num, n_num + n_cat)))] if n_cat else []))
    if task == "classify":
        y, yt = [r[-1] for r in rows], [r[-1] for r in trows]
        model = MLPClassifier(random_state=seed) if method == "mlp" else LogisticRegression(max_iter=1000)
    else:
        y, yt = np.array([float(r[-1]) for r in rows]), np.array([float(r[-1]) for r in trows])
        base = MLPRegressor(random_state=seed) if method == "mlp" else Ridge()
        model = TransformedTargetRegressor(regressor=base, transformer=StandardScaler())
    pipe = make_pipeline(pre, model)
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(x, y)
    seconds = time.perf_counter() - began
    pred = pipe.predict(xt)
    score = accuracy_score(yt, pred) if task == "classify" else r2_score(yt, pred)
    return score, seconds


def realmlp_fit(task, train, test, seed):
    """pytabkit's RealMLP-TD (Holzmüller et al. 2024) with its default
    settings on one CPU thread; categorical columns as pandas categories."""
    import pandas as pd
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    header, rows = train
    _, trows = test
    kinds = kinds_of(rows + trows, len(header) - 1)

    # RealMLP refuses NaN: numeric cells are filled with the training mean
    # (as for the other methods), missing categories become a category.
    means = {j: np.mean([float(r[j]) for r in rows if r[j] != ""] or [0.0]) for j, k in enumerate(kinds) if k == "numeric"}

    def frame(rs):
        cols = {}
        for j, k in enumerate(kinds):
            if k == "numeric":
                cols[header[j]] = [float(r[j]) if r[j] != "" else means[j] for r in rs]
            else:
                cells = [r[j] if r[j] != "" else "(missing)" for r in rs]
                cats = sorted({r[j] if r[j] != "" else "(missing)" for r in rows + trows})
                cols[header[j]] = pd.Categorical(cells, categories=cats)
        return pd.DataFrame(cols)

    x, xt = frame(rows), frame(trows)
    if task == "classify":
        y, yt = np.array([r[-1] for r in rows]), [r[-1] for r in trows]
        model = RealMLP_TD_Classifier(random_state=seed, n_threads=1, device="cpu", verbosity=0)
    else:
        y, yt = np.array([float(r[-1]) for r in rows]), np.array([float(r[-1]) for r in trows])
        model = RealMLP_TD_Regressor(random_state=seed, n_threads=1, device="cpu", verbosity=0)
    began = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - began
    pred = model.predict(xt)
    score = accuracy_score(yt, pred) if task == "classify" else r2_score(yt, pred)
    return score, seconds


def replay_trials(journal):
    """The trial count that reads back every trial of a kept journal."""
    with open(journal) as f:
        trials = [json.loads(line)["trial"] for line in f.readlines()[1:] if line.strip()]
    return max(trials) + 1


def bpnet_fit(binary, task, train_path, test_path, target, seed, extra, tune_time=None, keep=None, replay=None):
    name = os.path.basename(train_path).replace(".train.csv", "")
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "m.safetensors")
        cmd = [binary, "--threads", "1", "train", "--data", train_path, "--target", target, "--impute", "mean",
               "--task", task, "--seed", str(seed), "--out", model, "--quiet"] + extra
        if tune_time:
            # `bpnet tune` on the training file: trials two at a time, each on one thread.
            bound = ["--time", str(tune_time)]
            if replay:
                # The search of a kept journal, read back: only the re-scoring
                # and the refit run again (a trial the deadline had cut runs).
                journal = os.path.join(replay, f"{name}.tune.jsonl")
                shutil.copy(journal, os.path.join(d, "m.tune.jsonl"))
                bound = ["--trials", str(replay_trials(journal))]
            cmd = [binary, "--threads", "2", "tune", "--data", train_path, "--target", target, "--task", task,
                   *bound, "--cv", "3", "--seed", str(seed), "--out", model, "--quiet"] + extra
        began = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        seconds = time.perf_counter() - began
        if tune_time and keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(os.path.join(d, "m.leaderboard.csv"), os.path.join(keep, f"{name}.leaderboard.csv"))
            shutil.copy(os.path.join(d, "m.tune.jsonl"), os.path.join(keep, f"{name}.tune.jsonl"))
        out = subprocess.run([binary, "--threads", "1", "eval", "--model", model, "--data", test_path, "--json"],
                             check=True, capture_output=True, text=True).stdout
        m = json.loads(out.strip().splitlines()[-1])["metrics"]
        return (m["accuracy"] if task == "classify" else m["r2"]), seconds


def main():
    data, out = sys.argv[1], sys.argv[2]
    binary = arg("--bpnet")
    half = arg("--half", "all")
    given = arg("--seeds", "3")
    seeds = [int(x) for x in given.split(",")] if "," in given else range(int(given))
    methods = arg("--methods", "bpnet,mlp,linear").split(",")
    extra = shlex.split(arg("--bpnet-args", ""))
    label = arg("--label", "bpnet")
    with open(os.path.join(data, "sets.json")) as f:
        sets = json.load(f)
    wanted = arg("--sets")
    names = [n for n in sets if (half == "all" or sets[n]["half"] == half) and (not wanted or n in wanted.split(","))]
    results = []
    for name in names:
        s = sets[name]
        for seed in seeds:
            tr, te = (os.path.join(data, f"{name}.s{seed}.{p}.csv") for p in ("train", "test"))
            for method in methods:
                if method == "realmlp":
                    score, secs = realmlp_fit(s["task"], read(tr), read(te), seed)
                    method_name = "realmlp_td"
                elif method == "tune":
                    score, secs = bpnet_fit(binary, s["task"], tr, te, s["target"], seed, extra, float(arg("--tune-time", "45")),
                                            arg("--keep"), arg("--replay"))
                    method_name = "bpnet_tune"
                elif method == "bpnet":
                    score, secs = bpnet_fit(binary, s["task"], tr, te, s["target"], seed, extra)
                    method_name = label
                else:
                    score, secs = sklearn_fit(method, s["task"], read(tr), read(te), seed)
                    method_name = method
                results.append({"set": name, "seed": seed, "method": method_name, "score": score, "seconds": secs,
                                "task": s["task"], "half": s["half"]})
                print(f"{name:14} seed {seed} {method_name:12} {score:.4f} {secs:7.2f} s", flush=True)
                # Written after every run, so that an interrupted run keeps what it measured.
                with open(out, "w") as f:
                    json.dump({"bpnet_args": extra, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
