#!/usr/bin/env python3
"""PyTorch reference fixtures for bpnet's layer normalization and Ghost BN.

What it computes
----------------
* ``layer_norm``: ``nn.LayerNorm(F, eps, elementwise_affine)`` on an input
  ``x: [rows, F]`` with random gain and bias; the loss is
  ``sum(out * R)`` for a fixed random ``R`` (so ``dL/dout = R``).  Stored: the
  output, the gradients of ``weight`` (gamma) and ``bias`` (beta) and the
  input gradient.
* ``ghost_batch_norm``: Ghost batch normalization of ``x: [m, F]`` with
  virtual batches of ``N`` rows, in training mode, same loss.
  - When ``N`` divides ``m`` (``k = m / N`` ghost batches) it is computed as a
    reshape of ``nn.BatchNorm1d``: ``x`` viewed as ``[k, N, F]``, transposed
    to ``[N, k, F]`` and flattened to ``[N, k * F]``, through
    ``BatchNorm1d(k * F)`` whose weight and bias are ``gamma`` and ``beta``
    repeated ``k`` times (autograd sums their gradients over the copies);
    the running statistics are the ``BatchNorm1d`` buffers averaged over the
    ``k`` copies.
  - Otherwise (a partial last ghost batch, split as bpnet does: the remainder
    is its own ghost batch when it has two or more rows, and joins the
    previous one when it has one) each ghost batch goes through
    ``torch.nn.functional.batch_norm(training=True)`` with the shared
    ``gamma`` and ``beta`` and its own copy of the initial running buffers,
    which are then averaged (the update is linear, so this is bpnet's
    once-per-batch update towards the averaged ghost statistics).
  Stored: output, gamma and beta gradients, input gradient, running mean and
  running variance after the pass (PyTorch's momentum 0.1, unbiased running
  variance; initial buffers 0 and 1).

Every case draws its inputs and parameters as float32 values and is computed
in float32 and in float64 (keys ``"float32"`` and ``"float64"``).  Tensors are
``{"shape": [...], "data": [flat row-major]}``; floats use Python's shortest
round-trip repr.  Deterministic: fixed seeds, CPU, one thread.

How to run
----------
    bash tools/gen_norm_fixtures.sh
or, with torch and numpy available:
    python tools/norm_reference.py crates/bpnet/tests/fixtures/norm_reference.json
"""

import json
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

GENERATOR = "tools/norm_reference.py"
DTYPES = (("float32", torch.float32), ("float64", torch.float64))


def f32(a):
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def tensor_json(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    data = [float(x) for x in value.reshape(-1).tolist()]
    if not all(math.isfinite(x) for x in data):
        raise AssertionError("non-finite value in fixture")
    return {"shape": list(value.shape), "data": data}


def to_torch(a32, dtype, grad=False):
    t = torch.from_numpy(np.array(a32, dtype=np.float32)).to(dtype)
    return t.requires_grad_(grad)


def make_input(rng, rows, cols):
    z = rng.standard_normal((rows, cols))
    return f32(z * (1.0 + 0.5 * np.arange(cols)) + (np.arange(cols) - 1.0))


def layer_norm_case(name, seed, rows, feats, eps, affine):
    rng = np.random.default_rng([seed])
    x = make_input(rng, rows, feats)
    r = f32(rng.standard_normal((rows, feats)))
    gamma = f32(1.0 + 0.3 * rng.standard_normal(feats))
    beta = f32(0.2 * rng.standard_normal(feats))
    case = {"name": name, "rows": rows, "features": feats, "eps": eps, "affine": affine,
            "input": tensor_json(x), "upstream": tensor_json(r)}
    if affine:
        case["weight"] = tensor_json(gamma)
        case["bias"] = tensor_json(beta)
    for key, dtype in DTYPES:
        ln = nn.LayerNorm(feats, eps=eps, elementwise_affine=affine).to(dtype)
        if affine:
            with torch.no_grad():
                ln.weight.copy_(to_torch(gamma, dtype))
                ln.bias.copy_(to_torch(beta, dtype))
        xt = to_torch(x, dtype, grad=True)
        out = ln(xt)
        (out * to_torch(r, dtype)).sum().backward()
        res = {"output": tensor_json(out), "input_grad": tensor_json(xt.grad)}
        if affine:
            res["weight_grad"] = tensor_json(ln.weight.grad)
            res["bias_grad"] = tensor_json(ln.bias.grad)
        case[key] = res
    return case


def ghost_batches(m, n):
    out = [(s, min(s + n, m)) for s in range(0, m, n)]
    if len(out) >= 2 and out[-1][1] - out[-1][0] == 1:
        last = out.pop()
        out[-1] = (out[-1][0], last[1])
    return out


def ghost_reshape(x, gamma, beta, n, eps, momentum):
    """Equal ghost batches: one BatchNorm1d over the reshaped batch."""
    m, feats = x.shape
    k = m // n
    bn = nn.BatchNorm1d(k * feats, eps=eps, momentum=momentum).to(x.dtype)
    w = gamma.repeat(k)
    b = beta.repeat(k)
    xr = x.view(k, n, feats).transpose(0, 1).reshape(n, k * feats)
    yr = F.batch_norm(xr, bn.running_mean, bn.running_var, w, b, True, momentum, eps)
    y = yr.view(n, k, feats).transpose(0, 1).reshape(m, feats)
    rm = bn.running_mean.view(k, feats).mean(0)
    rv = bn.running_var.view(k, feats).mean(0)
    return y, rm, rv


def ghost_chunks(x, gamma, beta, n, eps, momentum):
    """Any split: F.batch_norm per ghost batch, running buffers averaged."""
    m, feats = x.shape
    outs, rms, rvs = [], [], []
    for a, b in ghost_batches(m, n):
        rm = torch.zeros(feats, dtype=x.dtype)
        rv = torch.ones(feats, dtype=x.dtype)
        outs.append(F.batch_norm(x[a:b], rm, rv, gamma, beta, True, momentum, eps))
        rms.append(rm)
        rvs.append(rv)
    return torch.cat(outs), torch.stack(rms).mean(0), torch.stack(rvs).mean(0)


def ghost_case(name, seed, rows, feats, size, eps=1e-5, momentum=0.1):
    rng = np.random.default_rng([seed])
    x = make_input(rng, rows, feats)
    r = f32(rng.standard_normal((rows, feats)))
    gamma = f32(1.0 + 0.3 * rng.standard_normal(feats))
    beta = f32(0.2 * rng.standard_normal(feats))
    equal = rows % size == 0
    case = {"name": name, "rows": rows, "features": feats, "ghost_size": size, "eps": eps,
            "momentum": momentum, "method": "reshape" if equal else "chunks",
            "ghost_batches": ghost_batches(rows, size),
            "input": tensor_json(x), "upstream": tensor_json(r),
            "weight": tensor_json(gamma), "bias": tensor_json(beta)}
    for key, dtype in DTYPES:
        xt = to_torch(x, dtype, grad=True)
        g = to_torch(gamma, dtype, grad=True)
        b = to_torch(beta, dtype, grad=True)
        fn = ghost_reshape if equal else ghost_chunks
        y, rm, rv = fn(xt, g, b, size, eps, momentum)
        (y * to_torch(r, dtype)).sum().backward()
        if equal:
            # The reshape and the per-chunk computation must agree.
            y2, rm2, rv2 = ghost_chunks(xt.detach(), g.detach(), b.detach(), size, eps, momentum)
            assert torch.allclose(y.detach(), y2, rtol=1e-5, atol=1e-5)
            assert torch.allclose(rm, rm2) and torch.allclose(rv, rv2, rtol=1e-5)
        case[key] = {"output": tensor_json(y), "input_grad": tensor_json(xt.grad),
                     "weight_grad": tensor_json(g.grad), "bias_grad": tensor_json(b.grad),
                     "running_mean": tensor_json(rm), "running_var": tensor_json(rv)}
    return case


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = {
        "generator": GENERATOR,
        "torch_version": torch.__version__,
        "layer_norm": [
            layer_norm_case("ln affine", 1, 5, 6, 1e-5, True),
            layer_norm_case("ln no affine", 2, 4, 3, 1e-5, False),
            layer_norm_case("ln eps 1e-3 wide", 3, 3, 17, 1e-3, True),
        ],
        "ghost_batch_norm": [
            ghost_case("ghost 8 rows of 4", 11, 8, 3, 4),
            ghost_case("ghost 12 rows of 3", 12, 12, 2, 3),
            ghost_case("ghost 10 rows of 4 (partial 2)", 13, 10, 3, 4),
            ghost_case("ghost 9 rows of 4 (partial 1 joins)", 14, 9, 3, 4),
        ],
    }
    path = sys.argv[1]
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
