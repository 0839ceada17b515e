"""bpnet.MLPClassifier against sklearn.neural_network.MLPClassifier (and a
PyTorch loop, when torch is installed) with the same architecture,
optimizer (Adam, lr 1e-3), batch size and epochs, on scikit-learn's digits
and on MNIST (data/mnist); fit time and test accuracy, the median of
--repeats runs that alternate between the contenders. Then the cost of the
Python call against `bpnet train` on the same MNIST run.

A benchmark, not a test. Run it in the package's environment:

    PY="$(BPNET_PY_TORCH=1 bash tools/py_env.sh | tail -n 1)"
    cargo build --release -p bpnet-cli
    "$PY" bench/python_vs_sklearn.py --repeats 3

Every contender gets the same threads (--threads, default: every core):
bpnet through `threads`, PyTorch through torch.set_num_threads, and
scikit-learn's BLAS through threadpoolctl.
"""

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist():
    d = ROOT / "data" / "mnist"
    xtr = idx(d / "train-images-idx3-ubyte.gz").reshape(60000, -1).astype(np.float32) / 255
    ytr = idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = idx(d / "t10k-images-idx3-ubyte.gz").reshape(10000, -1).astype(np.float32) / 255
    yte = idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return xtr, ytr, xte, yte


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    return xtr, ytr, xte, yte


def run_bpnet(data, hidden, epochs, batch, threads):
    import bpnet

    xtr, ytr, xte, yte = data
    est = bpnet.MLPClassifier(hidden_layer_sizes=hidden, batch_norm=False, epochs=epochs, batch_size=batch,
                              val_split=0.0, patience=0, scaling="none", optimizer="adam", threads=threads,
                              ensemble=1)  # one network, as the peers train (the default is 5 below 50k rows)
    t = time.perf_counter()
    est.fit(xtr, ytr)
    fit = time.perf_counter() - t
    return fit, est.score(xte, yte)


def run_bpnet_bn(data, hidden, epochs, batch, threads):
    import bpnet

    xtr, ytr, xte, yte = data
    est = bpnet.MLPClassifier(hidden_layer_sizes=hidden, batch_norm=True, epochs=epochs, batch_size=batch,
                              val_split=0.0, patience=0, scaling="none", optimizer="adam", threads=threads,
                              ensemble=1)  # one network, as the peers train (the default is 5 below 50k rows)
    t = time.perf_counter()
    est.fit(xtr, ytr)
    fit = time.perf_counter() - t
    return fit, est.score(xte, yte)


def run_sklearn(data, hidden, epochs, batch, threads):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    xtr, ytr, xte, yte = data
    est = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", solver="adam", learning_rate_init=1e-3,
                        batch_size=batch, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                        early_stopping=False, alpha=0.0, random_state=0, shuffle=True)
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        est.fit(xtr, ytr)
        fit = time.perf_counter() - t
    return fit, est.score(xte, yte)


def run_torch(data, hidden, epochs, batch, threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    xtr, ytr, xte, yte = (torch.from_numpy(np.ascontiguousarray(a)) for a in data)
    layers, width = [], xtr.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, 10))
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch):
            idx_ = order[i : i + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xtr[idx_]), ytr[idx_])
            loss.backward()
            opt.step()
    fit = time.perf_counter() - t
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    return fit, acc


def cli_overhead(hidden, epochs, batch, threads, repeats):
    """`bpnet train --data mnist` against bpnet.MLPClassifier on the same
    60,000 MNIST images (no validation, no test set scored inside the timing)."""
    import bpnet

    exe = os.environ.get("BPNET_BIN") or str(ROOT / "target" / "release" / "bpnet")
    xtr, ytr, _, _ = mnist()
    h = ",".join(map(str, hidden))
    py_times, cli_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            est = bpnet.MLPClassifier(hidden_layer_sizes=hidden, epochs=epochs, batch_size=batch, val_split=0.0,
                                      patience=0, scaling="none", threads=threads)
            t = time.perf_counter()
            est.fit(xtr, ytr)
            py_times.append(time.perf_counter() - t)
            cmd = [exe, "--threads", str(threads), "train", "--data", "mnist", "--hidden", h, "--epochs", str(epochs),
                   "--batch-size", str(batch), "--val-split", "0", "--patience", "0", "--quiet", "--json",
                   "--out", str(Path(tmp) / "m.safetensors"), "--overwrite"]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
            cli_times.append(time.perf_counter() - t)
    return statistics.median(py_times), statistics.median(cli_times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--mnist-epochs", type=int, default=2)
    ap.add_argument("--digits-epochs", type=int, default=30)
    ap.add_argument("--skip", default="", help="comma-separated contenders to leave out (bpnet, bpnet+bn, sklearn, torch)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--torch-site", help="a site-packages folder with torch (e.g. bench/.venv's, made by "
                    "bench/compare.sh), appended to sys.path so this environment's numpy stays first")
    args = ap.parse_args()
    if args.torch_site:
        sys.path.append(args.torch_site)
    contenders = {"bpnet": run_bpnet, "bpnet+bn": run_bpnet_bn, "sklearn": run_sklearn, "torch": run_torch}
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: the PyTorch loop is left out", file=sys.stderr)
        contenders.pop("torch")
    for s in filter(None, args.skip.split(",")):
        contenders.pop(s, None)
    hidden, batch = (256, 128), 128
    rows = []
    for name, load, epochs in (("digits", digits, args.digits_epochs), ("MNIST", mnist, args.mnist_epochs)):
        data = load()
        times = {k: [] for k in contenders}
        accs = {k: [] for k in contenders}
        for _ in range(args.repeats):
            for k, fn in contenders.items():
                fit, acc = fn(data, hidden, epochs, batch, args.threads)
                times[k].append(fit)
                accs[k].append(acc)
        for k in contenders:
            rows.append(dict(data=name, contender=k, epochs=epochs, fit_s=statistics.median(times[k]),
                             accuracy=statistics.median(accs[k]), times=times[k]))
    print(f"MLP {'-'.join(map(str, hidden))} ReLU, Adam lr 1e-3, batch {batch}, {args.threads} threads, "
          f"median of {args.repeats} alternating runs")
    print("| data | contender | epochs | fit (s) | test accuracy | vs sklearn |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ref = next(x for x in rows if x["data"] == r["data"] and x["contender"] == "sklearn")["fit_s"] \
            if "sklearn" in contenders else float("nan")
        print(f"| {r['data']} | {r['contender']} | {r['epochs']} | {r['fit_s']:.3f} | {100 * r['accuracy']:.2f}% "
              f"| {ref / r['fit_s']:.1f}x |")
    py, cli = cli_overhead((100, 100), args.mnist_epochs, 32, args.threads, args.repeats)
    print(f"\nPython call vs CLI, MNIST 60,000 rows, 784-100-100-10 + BN, Adam, batch 32, {args.mnist_epochs} epochs:")
    print(f"bpnet.MLPClassifier.fit {py:.2f} s (data already in memory); `bpnet train --data mnist` {cli:.2f} s "
          f"(process start, IDX decoding and model file included); Python / CLI = {py / cli:.3f}")
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, python_s=py, cli_s=cli), indent=1))


if __name__ == "__main__":
    main()
