"""Reference numbers for cross-entropy with label smoothing, from PyTorch's
``nn.CrossEntropyLoss(label_smoothing=eps)`` (mean reduction) and autograd,
in float64. Writes crates/bpnet/tests/fixtures/label_smoothing.json; run
through tools/gen_fixtures.sh (pinned torch). The Rust test
crates/bpnet/tests/label_smoothing.rs compares bpnet's loss and gradient
with these, in f64 and f32, without Python.
"""
import json
import sys

import numpy as np
import torch

CASES = [
    # name, rows, classes, eps, seed
    ("one_row", 1, 3, 0.1, 1),
    ("two_classes", 7, 2, 0.05, 2),
    ("prime_rows", 33, 5, 0.1, 3),
    ("strong", 13, 4, 0.3, 4),
    ("large_logits", 6, 7, 0.2, 5),
]


def case(name, rows, classes, eps, seed):
    rng = np.random.default_rng(seed)
    scale = 30.0 if name == "large_logits" else 2.0
    z = rng.normal(scale=scale, size=(rows, classes))
    y = rng.integers(0, classes, size=rows)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=eps)(zt, torch.tensor(y, dtype=torch.long))
    loss.backward()
    return {
        "name": name,
        "eps": eps,
        "logits": z.tolist(),
        "labels": [int(v) for v in y],
        "loss": float(loss.item()),
        "grad": zt.grad.numpy().tolist(),
    }


def main(out):
    data = {"torch": torch.__version__, "cases": [case(*c) for c in CASES]}
    with open(out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
