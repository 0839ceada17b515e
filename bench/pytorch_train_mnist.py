"""PyTorch peer of `bpnet train --data mnist` with bpnet's defaults, end to
end: read the gzip IDX files of data/mnist, hold out a stratified 10 %
validation split, scale pixels to [0, 1] (bpnet's image pipeline), train 784-100-100-10 with
ReLU and batch normalization before each activation (Linear without bias
before BN), Adam with learning rate 1e-3, batches reshuffled each epoch,
up to --epochs epochs with early stopping on the validation loss (--patience,
the best epoch's weights restored), then evaluate the 10,000 test images.
bench/end_to_end.py passes bpnet's defaults as read from
`bpnet train --data mnist --print-config` (batch size, epochs, patience,
validation fraction, hidden widths, learning rate).

    python bench/pytorch_train_mnist.py --threads 2 --batch-size 128 --patience 20 [--epochs 100] [--seed 0]

The last line of output is JSON: seconds (the whole process from start of
main), epochs, best_epoch, test_accuracy. Run by bench/end_to_end.py.
"""
import argparse
import copy
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def stratified_split(y, frac, rng):
    val = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        rng.shuffle(rows)
        val.extend(rows[: int(round(frac * len(rows)))])
    mask = np.zeros(len(y), dtype=bool)
    mask[val] = True
    return ~mask, mask


def net(hidden):
    layers, dims = [], [784, *hidden, 10]
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == len(dims) - 2
        layers.append(nn.Linear(a, b, bias=last))
        if not last:
            layers += [nn.BatchNorm1d(b, momentum=0.1), nn.ReLU()]
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


def evaluate(model, x, y, loss_fn):
    model.eval()
    with torch.no_grad():
        out = model(x)
        return loss_fn(out, y).item(), (out.argmax(1) == y).float().mean().item()


def main():
    start = time.perf_counter()
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--patience", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--val-split", type=float, default=0.1)
    p.add_argument("--hidden", default="100,100")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    d = os.path.join(ROOT, "data", "mnist")
    x = idx(os.path.join(d, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32)
    y = idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    xt = idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32)
    yt = idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    keep, held = stratified_split(y, a.val_split, rng)
    z = lambda m: torch.from_numpy(m / np.float32(255.0))
    xtr, ytr = z(x[keep]), torch.from_numpy(y[keep])
    xva, yva = z(x[held]), torch.from_numpy(y[held])
    xte, yte = z(xt), torch.from_numpy(yt)
    model = net([int(w) for w in a.hidden.split(",")])
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()
    best, best_state, best_epoch, epochs, steps = float("inf"), None, 0, 0, 0
    for epoch in range(1, a.epochs + 1):
        model.train()
        perm = torch.randperm(len(ytr))
        for i in range(0, len(perm), a.batch_size):
            b = perm[i:i + a.batch_size]
            if len(b) < 2:
                continue  # BatchNorm1d cannot train on one row (bpnet drops it too)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xtr[b]), ytr[b]).backward()
            opt.step()
            steps += 1
        epochs = epoch
        val_loss, _ = evaluate(model, xva, yva, loss_fn)
        if val_loss < best:
            best, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= a.patience:
            break
    model.load_state_dict(best_state)
    _, acc = evaluate(model, xte, yte, loss_fn)
    print(json.dumps({"seconds": time.perf_counter() - start, "epochs": epochs, "best_epoch": best_epoch,
                      "steps": steps, "batch_size": a.batch_size, "patience": a.patience, "test_accuracy": acc}))


if __name__ == "__main__":
    main()
