"""PyTorch peer of `bpnet bench`: the same network, optimizer, batch size and
random data, timed the same way (warm-up, then N training steps or eval-mode
forward passes under torch.no_grad()). Prints one JSON line with ms_per_step,
samples_per_s and gflops, like `bpnet bench --json`.

Run through bench/compare.sh, which creates the
virtual environment. `--gemm N` times one n x n matrix product instead.
"""
import argparse
import json
import time

import torch
from torch import nn


def build(dims, activation, batch_norm):
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU}[activation]
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        hidden = i < len(dims) - 2
        layers.append(nn.Linear(a, b, bias=not (hidden and batch_norm)))
        if hidden:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(act())
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dims", default="784,100,100,100,10")
    p.add_argument("--activation", default="sigmoid")
    p.add_argument("--batch-norm", action="store_true")
    p.add_argument("--batch-size", type=int, default=60)
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--inference", action="store_true")
    p.add_argument("--fused", action="store_true", help="accepted for symmetry with bpnet; PyTorch has no fused path")
    p.add_argument("--json", action="store_true", help="accepted for symmetry with bpnet; the last line is always JSON")
    p.add_argument("--gemm", type=int, default=0, help="time C = A B for n x n matrices instead")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.gemm:
        return gemm(a)
    torch.manual_seed(7)
    dims = [int(d) for d in a.dims.split(",")]
    model = build(dims, a.activation, a.batch_norm)
    lr = a.lr
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr or 0.5)
    elif a.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr or 1e-3)
    else:
        raise SystemExit(f"unsupported optimizer {a.optimizer}")
    loss_fn = nn.CrossEntropyLoss()
    pool = [(torch.rand(a.batch_size, dims[0]), torch.randint(0, dims[-1], (a.batch_size,))) for _ in range(8)]

    def train_step(i):
        x, y = pool[i % 8]
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer(i):
        with torch.no_grad():
            model(pool[i % 8][0])

    if a.inference:
        model.eval()
    step = infer if a.inference else train_step
    for i in range(a.warmup):
        step(i)
    start = time.perf_counter()
    for i in range(a.steps):
        step(i)
    secs = time.perf_counter() - start
    # Only the products computed, as `bpnet bench` counts them: a training
    # step adds the weight gradients and the input gradients of every layer
    # but the first (the input needs no gradient).
    macs = sum(x * y for x, y in zip(dims[:-1], dims[1:]))
    flops = 2 * a.batch_size * (macs if a.inference else 3 * macs - dims[0] * dims[1])
    print(json.dumps({
        "ms_per_step": secs * 1e3 / a.steps,
        "samples_per_s": a.batch_size * a.steps / secs,
        "gflops": flops * a.steps / secs / 1e9,
        "threads": a.threads,
        "torch": torch.__version__,
    }))


def gemm(a):
    """Times torch.mm(A, B, out=C) for n x n float32 matrices."""
    n = a.gemm
    x, y, out = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)
    for _ in range(a.warmup):
        torch.mm(x, y, out=out)
    start = time.perf_counter()
    for _ in range(a.steps):
        torch.mm(x, y, out=out)
    secs = time.perf_counter() - start
    print(json.dumps({
        "ms_per_step": secs * 1e3 / a.steps,
        "samples_per_s": 0.0,
        "gflops": 2 * n ** 3 * a.steps / secs / 1e9,
        "threads": a.threads,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
