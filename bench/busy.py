"""A busy machine: `bpnet bench` on 1 and on 2 threads, alternating, while
another process keeps one core busy (a Python loop, started here and
stopped at the end). The claim checked: 2 threads are never slower than 1
(the thread team runs jobs on the caller alone while workers stall; see
crates/bpnet/src/parallel/pacing.rs).

    python3 bench/busy.py [--rounds 5] [--only W1,W3] [--competitors 1] [--bpnet PATH]

Prints a Markdown table: ms per step on 1 and 2 threads (medians, min-max)
and the median of the per-round ratio t2/t1 (below 1: 2 threads faster).
"""
import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPNET = os.path.join(ROOT, "target", "release", "bpnet")
PAPER = "--dims 784,100,100,100,10 --activation sigmoid"
WIDE = "--dims 784,1024,1024,1024,10 --activation relu"
WORKLOADS = {
    "W1": (f"{PAPER} --batch-norm --batch-size 60 --optimizer sgd --steps 2000", "paper net, BN, batch 60, SGD"),
    "W3": (f"{WIDE} --batch-norm --batch-size 256 --optimizer adam --steps 60", "784-1024x3-10 ReLU, BN, Adam"),
    "I1": (f"{PAPER} --batch-norm --batch-size 1000 --inference --fused --steps 400", "W1 inference, 1000 rows"),
}


def spin():
    while True:
        pass


def bench(bpnet, args, threads):
    out = subprocess.run([bpnet, "bench"] + args.split() + ["--threads", str(threads), "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms_per_step"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default=",".join(WORKLOADS))
    p.add_argument("--competitors", type=int, default=1, help="busy processes to start")
    p.add_argument("--bpnet", default=BPNET, help="the binary to time (default: the release build)")
    a = p.parse_args()
    procs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(a.competitors)]
    for q in procs:
        q.start()
    try:
        rows = []
        for name in a.only.split(","):
            args, desc = WORKLOADS[name]
            one, two = [], []
            for r in range(a.rounds):
                if r % 2:  # in turn first: a fixed order favours one side
                    two.append(bench(a.bpnet, args, 2))
                    one.append(bench(a.bpnet, args, 1))
                else:
                    one.append(bench(a.bpnet, args, 1))
                    two.append(bench(a.bpnet, args, 2))
                print(f"{name} round {r + 1}: 1 thread {one[-1]:.4f} ms, 2 threads {two[-1]:.4f} ms",
                      file=sys.stderr)
            ratio = [t / o for o, t in zip(one, two)]
            rows.append((name, desc, one, two, ratio))
    finally:
        for q in procs:
            q.terminate()
    m = lambda xs: f"{statistics.median(xs):.4g} ({min(xs):.4g}–{max(xs):.4g})"
    print(f"\n{a.competitors} competing busy process(es), {a.rounds} rounds alternating, {os.cpu_count()} cores\n")
    print("| workload | 1 thread ms | 2 threads ms | median ratio 2/1 (min–max) |")
    print("|---|---|---|---|")
    for name, desc, one, two, ratio in rows:
        print(f"| {name}: {desc} | {m(one)} | {m(two)} | **{statistics.median(ratio):.3f}** "
              f"({min(ratio):.3f}–{max(ratio):.3f}) |")


if __name__ == "__main__":
    main()
