"""bpnet against PyTorch, side by side: every workload of docs/PERFORMANCE.md,
bpnet and PyTorch alternating within each round, ratios per round and their
median. Run through bench/compare.sh, which builds bpnet and creates the
virtual environment with torch.

    python bench/compare.py [--rounds N] [--threads 2,1] [--only W1,W3] [--quick]
    python bench/compare.py --scaling [--rounds N] [--threads 2]
    python bench/compare.py --end-to-end [--rounds N] [--threads 2]

The I* workloads time a saved model (`bpnet bench --inference --fused
--model M`) against ONNX Runtime running the same model exported with
`bpnet export --fold-bn --no-preprocessing` (bench/ort_infer.py); the models
are trained briefly on MNIST into bench/results/models on first use. The
end-to-end row is bench/end_to_end.py (`bpnet train --data mnist` against
bench/pytorch_train_mnist.py).

Writes Markdown tables to stdout and raw rows (one JSON object per
measurement) to bench/results/*.jsonl; --scaling also writes a plot.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPNET = os.path.join(ROOT, "target", "release", "bpnet")
PEER = [sys.executable, os.path.join(ROOT, "bench", "pytorch_mlp.py")]
ORT = [sys.executable, os.path.join(ROOT, "bench", "ort_infer.py")]
PAPER = "--dims 784,100,100,100,10 --activation sigmoid"
WIDE = "--dims 784,1024,1024,1024,10 --activation relu"

# name -> (description, arguments shared by both tools, steps, extra bpnet args)
WORKLOADS = {
    "W1": ("paper net, BN, batch 60, SGD", f"{PAPER} --batch-norm --batch-size 60 --optimizer sgd", 2000, ""),
    "W2": ("paper net, no BN, batch 60, SGD", f"{PAPER} --batch-size 60 --optimizer sgd", 2000, ""),
    "W3": ("784-1024x3-10 ReLU, BN, batch 256, Adam", f"{WIDE} --batch-norm --batch-size 256 --optimizer adam", 60, ""),
    "W5-tanh": ("W1 with tanh", "--dims 784,100,100,100,10 --activation tanh --batch-norm --batch-size 60 --optimizer sgd", 2000, ""),
    "W5-gelu": ("W1 with GELU", "--dims 784,100,100,100,10 --activation gelu --batch-norm --batch-size 60 --optimizer sgd", 2000, ""),
    "W5-elu": ("W1 with ELU", "--dims 784,100,100,100,10 --activation elu --batch-norm --batch-size 60 --optimizer sgd", 2000, ""),
    "W4a": ("W1 eval, batch 1000 (bpnet unfolded)", f"{PAPER} --batch-norm --batch-size 1000 --inference", 400, ""),
    "W4a-fused": ("W1 eval, batch 1000 (bpnet folded + fused)", f"{PAPER} --batch-norm --batch-size 1000 --inference", 400, "--fused"),
    "W4b": ("W3 eval, batch 1000 (bpnet unfolded)", f"{WIDE} --batch-norm --batch-size 1000 --inference", 40, ""),
    "W4b-fused": ("W3 eval, batch 1000 (bpnet folded + fused)", f"{WIDE} --batch-norm --batch-size 1000 --inference", 40, "--fused"),
    "GEMM1024": ("C = A B, n = 1024", "--gemm 1024", 60, ""),
    "GEMM2048": ("C = A B, n = 2048", "--gemm 2048", 10, ""),
}

# Saved models against ONNX Runtime: name -> (description, model, batch, steps).
# ONNX Runtime is timed through its Python API (bench/ort_infer.py): each
# call's CPython overhead counts; the -bound row binds inputs and a
# preallocated output once, so the call and the graph alone are timed.
ORT_WORKLOADS = {
    "I1": ("W1 model, 1000 rows, vs ONNX Runtime", "W1", 1000, 400, []),
    "I1-row": ("W1 model, 1 row, vs ONNX Runtime", "W1", 1, 20000, []),
    "I1-row-bound": ("W1 model, 1 row, vs ONNX Runtime with IO binding", "W1", 1, 20000, ["--iobinding"]),
    "I3": ("W3 model, 1000 rows, vs ONNX Runtime", "W3", 1000, 40, []),
}
MODELS = {
    "W1": "--hidden 100,100,100 --activation sigmoid",
    "W3": "--hidden 1024,1024,1024 --activation relu",
}


def model_files(name, results):
    """The model `name` (trained for 20 steps on MNIST) and its ONNX export."""
    d = os.path.join(results, "models")
    os.makedirs(d, exist_ok=True)
    st, onnx = os.path.join(d, name + ".safetensors"), os.path.join(d, name + ".onnx")
    if not os.path.exists(onnx):
        subprocess.run([BPNET, "train", "--data", "mnist", "--steps", "20", "--quiet", "--overwrite", "--out", st]
                       + MODELS[name].split(), check=True)
        subprocess.run([BPNET, "export", "--model", st, "--onnx", onnx, "--fold-bn", "--no-preprocessing",
                        "--overwrite"], check=True, capture_output=True)
    return st, onnx


def measure_ort(name, threads, results):
    """One `bpnet bench --model` run and one ONNX Runtime run, back to back
    (in turn first)."""
    _, model, batch, steps, peer = ORT_WORKLOADS[name]
    st, onnx = model_files(model, results)
    a = ["--batch-size", str(batch), "--steps", str(steps), "--threads", str(threads), "--json"]
    b, t = pair(lambda: run([BPNET, "bench", "--inference", "--fused", "--model", st] + a),
                lambda: run(ORT + ["--onnx", onnx] + a + peer))
    t.setdefault("gflops", b["gflops"] * b["ms_per_step"] / t["ms_per_step"])
    return b, t


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(args, steps, extra, threads):
    """One bpnet run and one PyTorch run, back to back (in turn first)."""
    a = args.split() + ["--steps", str(steps), "--json"]
    return pair(lambda: run([BPNET, "bench"] + a + extra.split() + ["--threads", str(threads)]),
                lambda: run(PEER + a + ["--threads", str(threads)]))


PAIRS = [0]


def pair(bpnet, peer):
    """Runs both, bpnet first in even calls and the peer first in odd ones
    (a fixed order favours whichever side a warmed cache or clock helps)."""
    PAIRS[0] += 1
    if PAIRS[0] % 2:
        b = bpnet()
        return b, peer()
    t = peer()
    return bpnet(), t


def summary(values):
    return statistics.median(values), min(values), max(values)


def compare(opts):
    names = opts.only.split(",") if opts.only else list(WORKLOADS) + list(ORT_WORKLOADS)
    scale = 0.1 if opts.quick else 1.0
    rows = []
    log = open(os.path.join(opts.results, "compare.jsonl"), "a")
    for threads in [int(t) for t in opts.threads.split(",")]:
        for name in names:
            if name in ORT_WORKLOADS:
                desc = ORT_WORKLOADS[name][0]
                one = lambda: measure_ort(name, threads, opts.results)
            else:
                desc, args, steps, extra = WORKLOADS[name]
                steps = max(2, int(steps * scale))
                one = lambda: measure(args, steps, extra, threads)
            ratios, bms, tms, bgf, tgf = [], [], [], [], []
            for r in range(opts.rounds):
                b, t = one()
                ratios.append(b["ms_per_step"] / t["ms_per_step"])
                bms.append(b["ms_per_step"])
                tms.append(t["ms_per_step"])
                bgf.append(b["gflops"])
                tgf.append(t["gflops"])
                log.write(json.dumps({"workload": name, "threads": threads, "round": r, "bpnet": b, "torch": t,
                                      "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
                log.flush()
                print(f"{name} t={threads} round {r + 1}: bpnet {b['ms_per_step']:.4f} ms, "
                      f"peer {t['ms_per_step']:.4f} ms, ratio {ratios[-1]:.3f}", file=sys.stderr)
            rows.append((name, desc, threads, summary(bms), summary(tms), summary(ratios),
                         statistics.median(bgf), statistics.median(tgf)))
    print(f"\n{opts.rounds} rounds, bpnet and the peer alternating; ratio = bpnet ms / peer ms per round; the peer "
          "is PyTorch, or ONNX Runtime for the I* rows\n")
    print("| workload | threads | bpnet ms (median, min–max) | peer ms (median, min–max) | median ratio (min–max) "
          "| bpnet GFLOP/s | peer GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for name, desc, threads, b, t, r, bg, tg in rows:
        print(f"| {name}: {desc} | {threads} | {b[0]:.4g} ({b[1]:.4g}–{b[2]:.4g}) | {t[0]:.4g} ({t[1]:.4g}–{t[2]:.4g}) "
              f"| **{r[0]:.3f}** ({r[1]:.3f}–{r[2]:.3f}) | {bg:.0f} | {tg:.0f} |")


def products(batch, dims):
    """FLOPs of the products a training step computes: forward, weight
    gradients and input gradients of every layer but the first
    (2 b (3 Σ in·out − in₁·out₁)), as `bpnet bench` and pytorch_mlp.py count."""
    sizes = [a * b for a, b in zip(dims[:-1], dims[1:])]
    return 2 * batch * (3 * sum(sizes) - sizes[0])


def steps_for(flops):
    """Enough steps for ~0.4 s of work at ~150 GFLOP/s, at least 3."""
    return int(max(3, min(2000, 0.4 * 150e9 / flops)))


def scaling(opts):
    threads = int(opts.threads.split(",")[0])
    log = open(os.path.join(opts.results, "scaling.jsonl"), "w")
    series = {"batch": [], "width": []}
    batches = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
    widths = [64, 128, 256, 512, 1024, 2048, 4096]
    points = [("batch", b, f"{PAPER} --batch-norm --batch-size {b} --optimizer sgd", products(b, [784, 100, 100, 100, 10]))
              for b in batches]
    points += [("width", w, f"--dims 784,{w},{w},{w},10 --activation relu --batch-norm --batch-size 256 "
                "--optimizer adam", products(256, [784, w, w, w, 10])) for w in widths]
    for kind, x, args, flops in points:
        b_ms, t_ms = [], []
        for r in range(opts.rounds):
            b, t = measure(args, steps_for(flops), "", threads)
            b_ms.append(b["ms_per_step"])
            t_ms.append(t["ms_per_step"])
            log.write(json.dumps({"sweep": kind, "x": x, "round": r, "threads": threads, "bpnet": b, "torch": t}) + "\n")
            log.flush()
        ratio = statistics.median([bb / tt for bb, tt in zip(b_ms, t_ms)])
        series[kind].append((x, statistics.median(b_ms), statistics.median(t_ms), ratio, flops))
        print(f"{kind} {x}: bpnet {series[kind][-1][1]:.4f} ms, torch {series[kind][-1][2]:.4f} ms, "
              f"ratio {ratio:.3f}", file=sys.stderr)
    titles = {"batch": "784-100-100-100-10 sigmoid + BN, SGD; batch size varies",
              "width": "784-w-w-w-10 ReLU + BN, Adam, batch 256; width w varies"}
    for kind in ("batch", "width"):
        print(f"\n{titles[kind]} ({threads} threads, median of {opts.rounds} rounds)\n")
        print(f"| {kind} | bpnet ms/step | PyTorch ms/step | median ratio | bpnet GFLOP/s | PyTorch GFLOP/s |")
        print("|---|---|---|---|---|---|")
        for x, b, t, r, flops in series[kind]:
            print(f"| {x} | {b:.4g} | {t:.4g} | **{r:.3f}** | {flops / b / 1e6:.0f} | {flops / t / 1e6:.0f} |")
    plot(series, titles, threads, opts.plot)


def plot(series, titles, threads, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, kind in zip(axes, ("batch", "width")):
        xs = [p[0] for p in series[kind]]
        ax.loglog(xs, [p[1] for p in series[kind]], "o-", label="bpnet")
        ax.loglog(xs, [p[2] for p in series[kind]], "s--", label="PyTorch")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size" if kind == "batch" else "hidden width")
        ax.set_ylabel("ms per training step")
        ax.set_title(titles[kind], fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"Training-step time, {threads} threads (median of rounds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    print(f"\nplot: {os.path.relpath(path, ROOT)}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", default="2,1", help="comma-separated thread counts, used by both tools")
    p.add_argument("--only", default="", help="comma-separated workloads: " + ",".join(WORKLOADS))
    p.add_argument("--quick", action="store_true", help="a tenth of the steps (to check that the harness works)")
    p.add_argument("--scaling", action="store_true", help="batch-size and width sweeps instead")
    p.add_argument("--end-to-end", action="store_true", help="bpnet train --data mnist against a PyTorch script")
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "scaling.svg"))
    p.add_argument("--bpnet", help="the bpnet binary to time (default: this checkout's release build)")
    opts = p.parse_args()
    import end_to_end
    if opts.bpnet:
        globals()["BPNET"] = opts.bpnet
        end_to_end.BPNET = opts.bpnet
    os.makedirs(opts.results, exist_ok=True)
    if opts.end_to_end:
        threads = int(opts.threads.split(",")[0])
        end_to_end.table(end_to_end.rows(opts.rounds, threads, opts.results), threads)
    elif opts.scaling:
        scaling(opts)
    else:
        compare(opts)


if __name__ == "__main__":
    main()
