"""Writes the PyTorch import fixtures in crates/bpnet/tests/fixtures/torch_import/.

Usage: python tools/torch_import_fixture.py OUT_DIR   (see tools/gen_torch_import.sh)

Each case is a small nn.Sequential MLP trained for a few steps in PyTorch
(so that weights, biases and batch-norm running statistics are not their
initial values), then saved the way a user would save it:

    safetensors.torch.save_file(model.state_dict(), "CASE.safetensors")

and CASE.json holds what the Rust test (tests/import_torch.rs) compares with:

    {"torch_version": str, "spec": "--spec value", "activation": "--activation value",
     "x": [[f32]], "eval_output": [[f32]],          # model.eval() outputs for x
     "train_x": [[f32]], "train_labels": [int],      # data the model was trained on
     "step": {"lr": float, "x": [[f32]], "labels": [int], "loss": float,
              "eval_output": [[f32]],                # eval outputs for x after the step
              "running_mean": {name: [f32]}}}        # BN running means after the step

"step" is one more SGD step (train mode, cross-entropy, no dropout in the
network) taken from the saved state, so the Rust test can check that bpnet
continues training exactly like PyTorch: same gradients, same BN momentum
convention (0.1) and running statistics.

Cases:
- mlp_bn_relu: nn.Sequential at the top level (names `0.weight`, ...):
  Linear(6,16) BatchNorm1d ReLU Dropout(0.1) Linear(16,16) BatchNorm1d ReLU
  Dropout(0.1) Linear(16,3). The Linear layers keep their biases before BN.
- net_tanh_bn_after: a module holding `self.net = nn.Sequential(...)`
  (names `net.0.weight`, ...): Linear(5,12) Tanh BatchNorm1d Linear(12,12)
  Tanh BatchNorm1d Linear(12,3); has the "step".
- leaky_no_bn: Linear(4,8) LeakyReLU(0.2) Linear(8,2), no batch norm.
- bn_eps_cumulative: Linear(5,10) BatchNorm1d(eps=1e-3, momentum=None)
  ReLU Linear(10,3): an eps other than the default and the cumulative
  average of running statistics (`bpnet import --bn-eps 0.001
  --bn-momentum none`, recorded as "bn_eps" and "bn_momentum" in the JSON);
  has the "step", whose running means depend on num_batches_tracked.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn


def data(n, features, classes, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g) * 1.5 + 0.3
    w = torch.randn(features, classes, generator=g)
    labels = (x @ w + 0.5 * torch.randn(n, classes, generator=g)).argmax(dim=1)
    return x, labels


def train(model, x, labels, steps, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for i in range(steps):
        idx = torch.arange(i * 16, i * 16 + 16) % x.shape[0]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), labels[idx]).backward()
        opt.step()


def rows(t):
    return t.detach().to(torch.float32).tolist()


class Wrapped(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def case(out, name, model, spec, activation, features, classes, seed, step=False, bn=None):
    x_train, y_train = data(96, features, classes, seed)
    train(model, x_train, y_train, steps=30, seed=seed)
    model.eval()
    x = torch.randn(10, features, generator=torch.Generator().manual_seed(seed + 1)) * 1.5
    with torch.no_grad():
        eval_output = model(x)
    save_file(model.state_dict(), str(out / f"{name}.safetensors"))
    record = {
        "torch_version": torch.__version__,
        "spec": spec,
        "activation": activation,
        "x": rows(x),
        "eval_output": rows(eval_output),
        "train_x": rows(x_train),
        "train_labels": y_train.tolist(),
    }
    if bn is not None:
        record["bn_eps"], record["bn_momentum"] = bn
    if step:
        lr = 0.1
        sx, sy = x_train[:24], y_train[:24]
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        model.train()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(sx), sy)
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            after = model(x)
        running = {k: rows(v) for k, v in model.state_dict().items() if k.endswith("running_mean")}
        record["step"] = {
            "lr": lr,
            "x": rows(sx),
            "labels": sy.tolist(),
            "loss": loss.item(),
            "eval_output": rows(after),
            "running_mean": running,
        }
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{name}: {[k for k in model.state_dict()]}")


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    mlp = nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(16, 3),
    )
    case(out, "mlp_bn_relu", mlp, "linear,bn,relu,dropout:0.1,linear,bn,relu,dropout:0.1,linear", "relu", 6, 3, 1)
    torch.manual_seed(1)
    wrapped = Wrapped(nn.Sequential(
        nn.Linear(5, 12), nn.Tanh(), nn.BatchNorm1d(12),
        nn.Linear(12, 12), nn.Tanh(), nn.BatchNorm1d(12),
        nn.Linear(12, 3),
    ))
    case(out, "net_tanh_bn_after", wrapped, "linear,tanh,bn,linear,tanh,bn,linear", "tanh", 5, 3, 2, step=True)
    torch.manual_seed(2)
    leaky = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Linear(8, 2))
    case(out, "leaky_no_bn", leaky, "linear,leakyrelu:0.2,linear", "leaky_relu:0.2", 4, 2, 3)
    torch.manual_seed(3)
    cumulative = nn.Sequential(
        nn.Linear(5, 10), nn.BatchNorm1d(10, eps=1e-3, momentum=None), nn.ReLU(), nn.Linear(10, 3),
    )
    case(out, "bn_eps_cumulative", cumulative, "linear,bn,relu,linear", "relu", 5, 3, 4, step=True,
         bn=(1e-3, "none"))


if __name__ == "__main__":
    main()
