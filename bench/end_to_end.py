"""End to end: `bpnet train --data mnist` with its defaults against the
equivalent PyTorch script (bench/pytorch_train_mnist.py: same network,
optimizer, batch size, epochs, validation split and early stopping; data
loading and test evaluation included), alternating, each run a fresh
process. The defaults are read from `bpnet train --data mnist
--print-config` and passed to the PyTorch script; a default the script does
not implement stops the run. Wall time is the parent's clock around the child; peak memory is
the child's maximum resident set (getrusage via os.wait4).

    python bench/end_to_end.py [--rounds 3] [--threads 2]

Prints a Markdown table (medians, min-max, median ratio) and appends raw
rows to bench/results/end_to_end.jsonl. Run through bench/compare.sh.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPNET = os.path.join(ROOT, "target", "release", "bpnet")


# What the PyTorch script implements, beside the settings it is passed.
SCRIPT = {"activation": "relu", "batch_norm": True, "bn_after": False, "norm": "batch", "dropout": 0.0,
          "label_smoothing": 0.0, "init": "he_normal", "optimizer": "adam", "weight_decay": 0.0,
          "steps": 0, "schedule": "constant", "monitor": "val_loss", "min_delta": 0.0, "clip_grad_norm": 0.0,
          "scaling": "auto", "test_split": 0.0, "limit": 0, "lr_auto": False,
          "ensemble": 0}  # 0: one network on MNIST's 54,000 training rows (five only up to 50,000)


def torch_args():
    """bpnet's defaults for MNIST as the PyTorch script's flags."""
    text = subprocess.run([BPNET, "train", "--data", "mnist", "--print-config"], check=True,
                          capture_output=True, text=True).stdout
    cfg = tomllib.loads(text)
    differ = {k: (cfg.get(k), v) for k, v in SCRIPT.items() if cfg.get(k) != v}
    if differ:
        sys.exit(f"bpnet's defaults changed; the PyTorch script implements other settings: {differ}")
    lr = cfg["lr"] or 1e-3  # 0 is the optimizer's default, Adam's 1e-3
    return ["--batch-size", str(cfg["batch_size"]), "--patience", str(cfg["patience"]),
            "--epochs", str(cfg["epochs"]), "--val-split", str(cfg["val_split"]),
            "--hidden", cfg["hidden"], "--lr", str(lr)]


def run_pair(threads, tmp, peer_args):
    """One bpnet run and one PyTorch run, back to back, with peak memory."""
    model = os.path.join(tmp, "m.safetensors")
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    b = measure([BPNET, "train", "--data", "mnist", "--threads", str(threads), "--quiet", "--json",
                 "--out", model], ROOT)
    t = measure([sys.executable, os.path.join(ROOT, "bench", "pytorch_train_mnist.py"), "--threads", str(threads),
                 *peer_args], ROOT)
    return b, t


def measure(cmd, cwd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed ({status}): {err.strip()[-400:]}")
    last = json.loads(out.strip().splitlines()[-1])
    return {"seconds": secs, "peak_mb": usage.ru_maxrss / 1024, "json": last}


def accuracy(run):
    j = run["json"]
    if "test_accuracy" in j:
        return j["test_accuracy"]
    return j.get("test", {}).get("accuracy")


def steps(run):
    j = run["json"]
    return j["steps"] if "steps" in j else (j.get("final") or {}).get("step")


def rows(rounds, threads, results):
    log = open(os.path.join(results, "end_to_end.jsonl"), "a")
    pairs = []
    peer_args = torch_args()
    print(f"PyTorch script flags from bpnet's defaults: {' '.join(peer_args)}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            b, t = run_pair(threads, tmp, peer_args)
            pairs.append((b, t))
            log.write(json.dumps({"threads": threads, "round": r, "bpnet": b, "torch": t,
                                  "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
            log.flush()
            print(f"end-to-end t={threads} round {r + 1}: bpnet {b['seconds']:.1f} s {b['peak_mb']:.0f} MB "
                  f"acc {accuracy(b)} steps {steps(b)}, torch {t['seconds']:.1f} s {t['peak_mb']:.0f} MB "
                  f"acc {accuracy(t)} steps {steps(t)}", file=sys.stderr)
    return pairs


def table(pairs, threads):
    med = lambda xs: (statistics.median(xs), min(xs), max(xs))
    bs, ts = med([b["seconds"] for b, _ in pairs]), med([t["seconds"] for _, t in pairs])
    ratio = med([b["seconds"] / t["seconds"] for b, t in pairs])
    bm, tm = med([b["peak_mb"] for b, _ in pairs]), med([t["peak_mb"] for _, t in pairs])
    ba = statistics.median([accuracy(b) for b, _ in pairs])
    ta = statistics.median([accuracy(t) for _, t in pairs])
    print(f"\nEnd to end, MNIST, defaults, {threads} threads, {len(pairs)} rounds alternating\n")
    bn = statistics.median([steps(b) for b, _ in pairs])
    tn = statistics.median([steps(t) for _, t in pairs])
    print("| tool | wall s (median, min–max) | peak MB | steps | test accuracy | ratio bpnet/PyTorch |")
    print("|---|---|---|---|---|---|")
    print(f"| bpnet train --data mnist | {bs[0]:.1f} ({bs[1]:.1f}–{bs[2]:.1f}) | {bm[0]:.0f} | {bn:.0f} | {ba:.4f} "
          f"| **{ratio[0]:.3f}** ({ratio[1]:.3f}–{ratio[2]:.3f}) |")
    print(f"| PyTorch script | {ts[0]:.1f} ({ts[1]:.1f}–{ts[2]:.1f}) | {tm[0]:.0f} | {tn:.0f} | {ta:.4f} | |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    a = p.parse_args()
    os.makedirs(a.results, exist_ok=True)
    table(rows(a.rounds, a.threads, a.results), a.threads)


if __name__ == "__main__":
    main()
