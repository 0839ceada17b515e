#!/usr/bin/env python3
"""Step-time model of data-parallel training on p machines (docs/DISTRIBUTED.md).

    T(p) = t1 / p  +  sum over the gradient's sums of allreduce(S)  +  BN sync
    allreduce(S) = min(ring(S), doubling(S))   (MPI picks the algorithm by size)
    ring(S)      = 2 (p - 1) alpha + 2 (p - 1) / p * S / beta   (large messages)
    doubling(S)  = ceil(log2 p) (alpha + S / beta)              (recursive doubling, small ones)
    BN sync, per BN layer of width f, per step (global statistics):
      forward, p <= 2: allreduce(p (2f + 1) * 8 bytes)  (each rank's count, mean, M2 slot)
      forward, p > 2:  allreduce((f + 1) * 8) + allreduce(f * 8)  (count and sums, then M2)
      backward: allreduce(2 f * 8 bytes)         (sum dy, sum dy*xhat)

t1 is one machine's measured compute time for the whole global batch (one
thread, bench/mpi.sh), assumed to split evenly (small per-rank blocks run
GEMMs less efficiently, so the real compute share is larger). alpha, beta:
per-message latency and bandwidth of the network. Prints a Markdown table.

    python3 bench/mpi_model.py --w1-ms 0.30 --w3-ms 30.0
"""
import argparse
import math

NETS = {
    # name: (the gradient's sums: each gradient of at least 65,536 values on
    # its own, then one flat buffer of the rest and the loss; BN widths;
    # global batch)
    "W1 (784-100x3-10 sigmoid+BN, batch 60)": ([784 * 100, 2 * 100 * 100 + 100 * 10 + 10 + 2 * 300 + 1], [100] * 3, 60),
    "W3 (784-1024x3-10 ReLU+BN, batch 256)": (
        [784 * 1024, 1024 * 1024, 1024 * 1024, 1024 * 10 + 10 + 2 * 3072 + 1],
        [1024] * 3,
        256,
    ),
}
LINKS = {"10 Gb/s": (20e-6, 1.25e9), "100 Gb/s": (5e-6, 12.5e9)}


def ring(p, nbytes, alpha, beta):
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes / beta


def allreduce(p, nbytes, alpha, beta):
    doubling = math.ceil(math.log2(p)) * (alpha + nbytes / beta)
    return min(ring(p, nbytes, alpha, beta), doubling)


def bn_forward(p, f, alpha, beta, gather_always=False):
    if p <= 2 or gather_always:
        return allreduce(p, p * (2 * f + 1) * 8, alpha, beta)
    return allreduce(p, (f + 1) * 8, alpha, beta) + allreduce(p, f * 8, alpha, beta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--w1-ms", type=float, required=True, help="W1 one-thread step time (ms)")
    ap.add_argument("--w3-ms", type=float, required=True, help="W3 one-thread step time (ms)")
    ap.add_argument("--bn-gather", action="store_true", help="gather every rank's BN moments at any p (for comparison)")
    a = ap.parse_args()
    t1s = dict(zip(NETS, [a.w1_ms / 1e3, a.w3_ms / 1e3]))
    print("| network | link | p | rows per rank | step (ms) | speed-up | communication share |")
    print("|---|---|---|---|---|---|---|")
    for net, (sums, bn, batch) in NETS.items():
        for link, (alpha, beta) in LINKS.items():
            for p in [2, 4, 8, 16, 32, 64]:
                comm = sum(allreduce(p, 4 * n, alpha, beta) for n in sums)
                comm += sum(bn_forward(p, f, alpha, beta, a.bn_gather) + allreduce(p, 2 * f * 8, alpha, beta) for f in bn)
                t = t1s[net] / p + comm
                print(f"| {net} | {link} | {p} | {batch / p:.1f} | {t * 1e3:.3f} | {t1s[net] / t:.2f}x | {100 * comm / t:.0f}% |")


if __name__ == "__main__":
    main()
