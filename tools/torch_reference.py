#!/usr/bin/env python3
"""PyTorch reference fixtures for the bpnet Rust tests.

What it computes
----------------
Reference results that the Rust implementation is compared against, without
needing Python at test time:

* ``networks``: one training-mode forward and backward pass (``model.train()``,
  batch normalization uses batch statistics) through small
  ``torch.nn.Sequential`` models: the network output, the mean-reduced loss,
  the gradient of every parameter, the gradient with respect to the input and
  the batch-norm running statistics after that single training forward.
* ``batch_norm_running``: a single ``nn.BatchNorm1d`` layer fed three training
  batches (sizes 6, 5, 7) and then one evaluation batch: the training outputs,
  the running mean/variance after each step and the evaluation output.
* ``optimizers``: one fixed model trained for 10 steps on the same batch with
  SGD (plain, weight decay, momentum, dampening, Nesterov), Adam, AdamW,
  RMSprop and Adagrad, optionally with ``clip_grad_norm_`` and with
  "decay-exempt" parameter groups: the parameters (and batch-norm buffers)
  after 10 steps and the loss at every step.

Every case starts from inputs and parameters drawn as float32 values (so they
are exactly representable in f32) and is computed twice from those same
values: once in ``torch.float32`` and once in ``torch.float64``; the results
are stored under the keys ``"float32"`` and ``"float64"``.  The script asserts
that both precisions agree closely and that the cumulative-average batch-norm
case ends with the plain average of the three batch means.

How to run
----------
    bash tools/gen_fixtures.sh
or, with torch and numpy available:
    python tools/torch_reference.py crates/bpnet/tests/fixtures/torch_reference.json

The output is deterministic: fixed seeds (numpy ``default_rng``), CPU only,
single-threaded, deterministic algorithms, single-tensor optimizer code paths
(``foreach=False``, not fused).  Running it twice gives a byte-identical file.

Format
------
* A tensor is ``{"shape": [...], "data": [flat row-major list]}``.
* Floats are written with Python's shortest round-trip repr, so f32 values are
  exact.
* Parameter and buffer names are ``state_dict()`` names of a module whose
  attribute ``layers`` is the ``nn.Sequential``: ``layers.{i}.weight``,
  ``layers.{i}.bias`` (Linear weight has shape [out, in]; for BatchNorm1d
  ``weight`` is gamma and ``bias`` is beta), ``layers.{i}.running_mean``,
  ``layers.{i}.running_var``.  ``num_batches_tracked`` is not written.
* A model is a list of layer descriptions, one per Sequential element:
  ``{"type": "dense", "in", "out", "bias"}``,
  ``{"type": "batch_norm", "features", "eps", "momentum" (null = cumulative
  average), "affine"}``, ``{"type": "activation", "kind", "param"}``.
* Losses (mean reduction): ``cross_entropy`` (target: list of ints),
  ``mse`` (target: tensor), ``bce_with_logits`` (target: tensor of 0.0/1.0).

Top level::

    {"generator": "tools/torch_reference.py", "torch_version": ...,
     "networks": [...], "batch_norm_running": [...],
     "optimizers": {"model": {...}, "cases": [...]}}
"""

import json
import math
import sys

import numpy as np
import torch
import torch.nn as nn

GENERATOR = "tools/torch_reference.py"
ACTIVATION_KINDS = [
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "softplus",
]
ACTIVATION_PARAM = {"leaky_relu": 0.1, "elu": 1.0}
DTYPES = (("float32", torch.float32), ("float64", torch.float64))

# Agreement required between the float32 and float64 results of a case:
# |a32 - a64| <= RTOL * max(|a64|, floor) + ATOL elementwise, where floor is
# ABS_FLOOR_FRACTION times the largest magnitude in the tensor (so entries that
# are nearly zero, e.g. cancelling gradient sums, are judged on the tensor's
# scale) and ATOL covers quantities that are zero in exact arithmetic (e.g. the
# gradient of a batch-norm beta whose shift a later batch norm removes).
RTOL = 1e-4
ABS_FLOOR_FRACTION = 1e-2
ATOL = 1e-6


# ----------------------------------------------------------------------------
# Helpers: deterministic f32 data, tensor <-> JSON
# ----------------------------------------------------------------------------


def rng_for(*key):
    """A numpy Generator seeded from a fixed tuple of small integers."""
    return np.random.default_rng(list(key))


def f32(array):
    """Round a float64 array to float32 values (returned as float32 array)."""
    return np.asarray(array, dtype=np.float64).astype(np.float32)


def tensor_json(value):
    """{"shape": [...], "data": [...]} from a numpy array or torch tensor."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    data = [float(x) for x in value.reshape(-1).tolist()]
    for x in data:
        if not math.isfinite(x):
            raise AssertionError("non-finite value in fixture")
    return {"shape": list(value.shape), "data": data}


def to_torch(array32, dtype):
    """float32 numpy array -> torch tensor of dtype (exact widening for f64)."""
    return torch.from_numpy(np.array(array32, dtype=np.float32)).to(dtype)


def make_input(rng, rows, cols):
    """N(0,1) scaled and shifted per column: column j -> scale 1+0.5j, shift j-1."""
    z = rng.standard_normal((rows, cols))
    scale = 1.0 + 0.5 * np.arange(cols)
    shift = np.arange(cols) - 1.0
    return f32(z * scale + shift)


# ----------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------


def dense(i, o, bias):
    return {"type": "dense", "in": i, "out": o, "bias": bias}


def batch_norm(f, eps=1e-5, momentum=0.1, affine=True):
    return {
        "type": "batch_norm",
        "features": f,
        "eps": eps,
        "momentum": momentum,
        "affine": affine,
    }


def activation(kind):
    return {"type": "activation", "kind": kind, "param": ACTIVATION_PARAM.get(kind)}


def make_activation(kind):
    if kind == "identity":
        return nn.Identity()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(negative_slope=ACTIVATION_PARAM["leaky_relu"])
    if kind == "elu":
        return nn.ELU(alpha=ACTIVATION_PARAM["elu"])
    if kind == "gelu":
        return nn.GELU()  # exact erf form
    if kind == "softplus":
        return nn.Softplus()  # beta 1, threshold 20
    raise ValueError(kind)


class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        mods = []
        for spec in layers:
            t = spec["type"]
            if t == "dense":
                mods.append(nn.Linear(spec["in"], spec["out"], bias=spec["bias"]))
            elif t == "batch_norm":
                mods.append(
                    nn.BatchNorm1d(
                        spec["features"],
                        eps=spec["eps"],
                        momentum=spec["momentum"],
                        affine=spec["affine"],
                    )
                )
            elif t == "activation":
                mods.append(make_activation(spec["kind"]))
            else:
                raise ValueError(t)
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)


def init_params(layers, rng):
    """Initial parameters and buffers (float32 numpy arrays) by state_dict name."""
    params = {}
    for i, spec in enumerate(layers):
        p = f"layers.{i}."
        if spec["type"] == "dense":
            params[p + "weight"] = f32(0.5 * rng.standard_normal((spec["out"], spec["in"])))
            if spec["bias"]:
                params[p + "bias"] = f32(0.1 * rng.standard_normal(spec["out"]))
        elif spec["type"] == "batch_norm":
            f = spec["features"]
            if spec["affine"]:
                params[p + "weight"] = f32(1.0 + 0.2 * rng.standard_normal(f))
                params[p + "bias"] = f32(0.1 * rng.standard_normal(f))
            params[p + "running_mean"] = f32(np.zeros(f))
            params[p + "running_var"] = f32(np.ones(f))
    return params


def build_model(layers, params, dtype):
    """Net in dtype with the given float32 starting values loaded."""
    model = Net(layers).to(dtype)
    state = model.state_dict()
    expected = {k for k in state if not k.endswith("num_batches_tracked")}
    if expected != set(params):
        raise AssertionError(f"parameter names {sorted(expected)} != {sorted(params)}")
    with torch.no_grad():
        for name, value in params.items():
            state[name].copy_(to_torch(value, dtype))
    model.train()
    return model


def buffer_names(params):
    return [k for k in params if k.endswith("running_mean") or k.endswith("running_var")]


def make_loss(kind):
    if kind == "cross_entropy":
        return nn.CrossEntropyLoss()
    if kind == "mse":
        return nn.MSELoss()
    if kind == "bce_with_logits":
        return nn.BCEWithLogitsLoss()
    raise ValueError(kind)


def target_torch(kind, target, dtype):
    if kind == "cross_entropy":
        return torch.tensor(target, dtype=torch.long)
    return to_torch(target, dtype)


def target_json(kind, target):
    if kind == "cross_entropy":
        return [int(t) for t in target]
    return tensor_json(target)


# ----------------------------------------------------------------------------
# Agreement checks between float32 and float64
# ----------------------------------------------------------------------------


def check_close(a32, a64, what):
    a = np.asarray(a32, dtype=np.float64)
    b = np.asarray(a64, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {a.shape} != {b.shape}")
    if a.size == 0:
        return
    floor = ABS_FLOOR_FRACTION * float(np.max(np.abs(b)))
    tol = RTOL * np.maximum(np.abs(b), floor) + ATOL
    err = np.abs(a - b)
    if not np.all(err <= tol):
        i = int(np.argmax(err - tol))
        raise AssertionError(
            f"{what}: float32 {a.reshape(-1)[i]!r} vs float64 {b.reshape(-1)[i]!r}"
        )


def check_tree(t32, t64, what):
    """Recursively compare two result trees with the same structure."""
    if isinstance(t32, dict) and "shape" in t32 and "data" in t32:
        check_close(
            np.array(t32["data"]).reshape(t32["shape"]),
            np.array(t64["data"]).reshape(t64["shape"]),
            what,
        )
    elif isinstance(t32, dict):
        if set(t32) != set(t64):
            raise AssertionError(f"{what}: keys differ")
        for k in t32:
            check_tree(t32[k], t64[k], f"{what}.{k}")
    elif isinstance(t32, list):
        if len(t32) != len(t64):
            raise AssertionError(f"{what}: lengths differ")
        if all(isinstance(x, float) for x in t32):
            check_close(t32, t64, what)
        else:
            for i, (x, y) in enumerate(zip(t32, t64)):
                check_tree(x, y, f"{what}[{i}]")
    elif isinstance(t32, float):
        check_close([t32], [t64], what)
    else:
        if t32 != t64:
            raise AssertionError(f"{what}: {t32!r} != {t64!r}")


# ----------------------------------------------------------------------------
# Network cases: one training forward + backward
# ----------------------------------------------------------------------------


def network_case(name, layers, loss, seed, batch=8, in_width=5):
    rng = rng_for(1, seed)
    x = make_input(rng, batch, in_width)
    out_width = [s for s in layers if s["type"] == "dense"][-1]["out"]
    if loss == "cross_entropy":
        target = [int(t) for t in rng.integers(0, out_width, size=batch)]
    elif loss == "mse":
        target = f32(rng.standard_normal((batch, out_width)))
    elif loss == "bce_with_logits":
        target = f32(rng.integers(0, 2, size=(batch, out_width)))
    else:
        raise ValueError(loss)
    params = init_params(layers, rng)

    case = {
        "name": name,
        "layers": layers,
        "loss": loss,
        "input": tensor_json(x),
        "target": target_json(loss, target),
        "params": {k: tensor_json(v) for k, v in params.items()},
    }
    for key, dtype in DTYPES:
        model = build_model(layers, params, dtype)
        xt = to_torch(x, dtype).requires_grad_(True)
        out = model(xt)
        value = make_loss(loss)(out, target_torch(loss, target, dtype))
        value.backward()
        named = dict(model.named_parameters())
        state = model.state_dict()
        case[key] = {
            "output": tensor_json(out),
            "loss": float(value.item()),
            "grads": {k: tensor_json(named[k].grad) for k in params if k in named},
            "input_grad": tensor_json(xt.grad),
            "running": {k: tensor_json(state[k]) for k in buffer_names(params)},
        }
    check_tree(case["float32"], case["float64"], name)
    return case


def network_cases():
    cases = []
    seed = 0
    for kind in ACTIVATION_KINDS:
        layers = [
            dense(5, 7, False), batch_norm(7), activation(kind),
            dense(7, 6, False), batch_norm(6), activation(kind),
            dense(6, 5, False), batch_norm(5), activation(kind),
            dense(5, 3, True),
        ]  # fmt: skip
        cases.append(network_case(f"bn_before_{kind}", layers, "cross_entropy", seed))
        seed += 1

    layers = [dense(5, 7, True), activation("relu"), batch_norm(7), dense(7, 3, True)]
    cases.append(network_case("bn_after_relu", layers, "cross_entropy", seed))
    seed += 1

    layers = [
        dense(5, 7, False), batch_norm(7, affine=False), activation("sigmoid"),
        dense(7, 6, False), batch_norm(6, affine=False), activation("sigmoid"),
        dense(6, 5, False), batch_norm(5, affine=False), activation("sigmoid"),
        dense(5, 3, True),
    ]  # fmt: skip
    cases.append(network_case("bn_no_affine_sigmoid", layers, "cross_entropy", seed))
    seed += 1

    layers = [dense(5, 7, True), activation("tanh"), dense(7, 4, True)]
    cases.append(network_case("no_bn_tanh_mse", layers, "mse", seed))
    seed += 1

    layers = [dense(5, 6, False), batch_norm(6), activation("elu"), dense(6, 2, True)]
    cases.append(network_case("bn_elu_bce", layers, "bce_with_logits", seed))
    seed += 1

    layers = [
        dense(5, 6, False), batch_norm(6, momentum=None), activation("gelu"),
        dense(6, 3, True),
    ]  # fmt: skip
    cases.append(network_case("bn_momentum_none_gelu", layers, "cross_entropy", seed))
    return cases


# ----------------------------------------------------------------------------
# Batch-norm running statistics
# ----------------------------------------------------------------------------


def bn_case(name, momentum, eps, seed, features=4, sizes=(6, 5, 7), eval_rows=3):
    rng = rng_for(2, seed)
    gamma = f32(1.0 + 0.2 * rng.standard_normal(features))
    beta = f32(0.1 * rng.standard_normal(features))
    batches = [make_input(rng, n, features) for n in sizes]
    eval_input = make_input(rng, eval_rows, features)
    case = {
        "name": name,
        "features": features,
        "eps": eps,
        "momentum": momentum,
        "gamma": tensor_json(gamma),
        "beta": tensor_json(beta),
        "batches": [tensor_json(b) for b in batches],
        "eval_input": tensor_json(eval_input),
    }
    for key, dtype in DTYPES:
        bn = nn.BatchNorm1d(features, eps=eps, momentum=momentum).to(dtype)
        with torch.no_grad():
            bn.weight.copy_(to_torch(gamma, dtype))
            bn.bias.copy_(to_torch(beta, dtype))
        bn.train()
        outs, means, vars_ = [], [], []
        with torch.no_grad():
            for b in batches:
                outs.append(tensor_json(bn(to_torch(b, dtype))))
                means.append(tensor_json(bn.running_mean))
                vars_.append(tensor_json(bn.running_var))
            bn.eval()
            ev = bn(to_torch(eval_input, dtype))
        case[key] = {
            "train_outputs": outs,
            "running_mean": means,
            "running_var": vars_,
            "eval_output": tensor_json(ev),
        }
    check_tree(case["float32"], case["float64"], name)

    if momentum is None:
        # Cumulative average: after 3 steps the running statistics are the
        # plain averages of the batch means / unbiased batch variances.
        exp_mean = np.mean([np.asarray(b, np.float64).mean(axis=0) for b in batches], axis=0)
        exp_var = np.mean(
            [np.asarray(b, np.float64).var(axis=0, ddof=1) for b in batches], axis=0
        )
        for key, tol in (("float32", 1e-6), ("float64", 1e-12)):
            got_mean = np.array(case[key]["running_mean"][-1]["data"])
            got_var = np.array(case[key]["running_var"][-1]["data"])
            scale_m = max(1.0, float(np.max(np.abs(exp_mean))))
            scale_v = max(1.0, float(np.max(np.abs(exp_var))))
            if not np.all(np.abs(got_mean - exp_mean) <= tol * scale_m):
                raise AssertionError(f"{name} {key}: cumulative running_mean {got_mean} != {exp_mean}")
            if not np.all(np.abs(got_var - exp_var) <= tol * scale_v):
                raise AssertionError(f"{name} {key}: cumulative running_var {got_var} != {exp_var}")
    return case


def bn_cases():
    return [
        bn_case("momentum_0.1", 0.1, 1e-5, 0),
        bn_case("momentum_none_cumulative", None, 1e-5, 1),
        bn_case("momentum_0.3_eps_1e-3", 0.3, 1e-3, 2),
    ]


# ----------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------

OPT_LAYERS = [dense(4, 6, False), batch_norm(6), activation("tanh"), dense(6, 3, True)]
OPT_STEPS = 10


# Seed of the shared optimizer model; chosen so that in the sgd_clip case the
# gradient norm exceeds max_norm 0.5 in the first steps and falls below it
# later, so both sides of the clipping are exercised.
OPT_MODEL_SEED = 3


def opt_model():
    rng = rng_for(3, OPT_MODEL_SEED)
    x = make_input(rng, 8, 4)
    target = [int(t) for t in rng.integers(0, 3, size=8)]
    params = init_params(OPT_LAYERS, rng)
    return x, target, params


def dense_weight_names(layers):
    return {f"layers.{i}.weight" for i, s in enumerate(layers) if s["type"] == "dense"}


def with_defaults(opt, hyper):
    """Complete the hyper-parameters with torch's defaults for that optimizer."""
    defaults = {
        "sgd": {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
        "adam": {"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
        "adamw": {"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
        "rmsprop": {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
        "adagrad": {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
    }[opt]
    full = {"lr": hyper["lr"]}
    for k, v in defaults.items():
        full[k] = hyper.get(k, v)
    extra = set(hyper) - set(full)
    if extra:
        raise ValueError(f"unknown hyper-parameters {extra}")
    return full


def make_optimizer(opt, groups, hyper):
    h = dict(hyper)
    if opt == "sgd":
        return torch.optim.SGD(groups, foreach=False, fused=False, **h)
    if opt == "adam":
        h["betas"] = tuple(h["betas"])
        return torch.optim.Adam(groups, foreach=False, fused=False, **h)
    if opt == "adamw":
        h["betas"] = tuple(h["betas"])
        return torch.optim.AdamW(groups, foreach=False, fused=False, **h)
    if opt == "rmsprop":
        return torch.optim.RMSprop(groups, foreach=False, **h)
    if opt == "adagrad":
        return torch.optim.Adagrad(groups, foreach=False, fused=False, **h)
    raise ValueError(opt)


def opt_case(name, opt, hyper, x, target, params, decay_exempt=False, clip=None):
    hyper = with_defaults(opt, hyper)
    case = {
        "name": name,
        "optimizer": opt,
        "hyper": hyper,
        "decay_exempt": decay_exempt,
        "clip_grad_norm": clip,
        "steps": OPT_STEPS,
    }
    decayed = dense_weight_names(OPT_LAYERS)
    for key, dtype in DTYPES:
        model = build_model(OPT_LAYERS, params, dtype)
        named = list(model.named_parameters())
        if decay_exempt:
            # Group 1: dense-layer weights with the configured weight decay.
            # Group 2: everything else (dense biases, BN gamma/beta), decay 0.
            groups = [
                {"params": [p for n, p in named if n in decayed]},
                {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0},
            ]
        else:
            groups = [{"params": [p for _, p in named]}]
        optimizer = make_optimizer(opt, groups, hyper)
        xt = to_torch(x, dtype)
        tt = target_torch("cross_entropy", target, dtype)
        loss_fn = make_loss("cross_entropy")
        losses = []
        grad_norms = []
        for _ in range(OPT_STEPS):
            optimizer.zero_grad()
            loss = loss_fn(model(xt), tt)
            losses.append(float(loss.item()))
            loss.backward()
            if clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(
                    [p for _, p in named], clip, norm_type=2.0, foreach=False
                )
                grad_norms.append(float(norm))
            optimizer.step()
        state = model.state_dict()
        case[key] = {
            "params": {k: tensor_json(state[k]) for k in params},
            "losses": losses,
        }
        if clip is not None:
            clipped = sum(n > clip for n in grad_norms)
            if not 0 < clipped < OPT_STEPS:
                raise AssertionError(f"{name} {key}: clipping active in {clipped} of {OPT_STEPS} steps")
    check_tree(case["float32"], case["float64"], name)
    return case


def optimizer_section():
    x, target, params = opt_model()
    model = {
        "layers": OPT_LAYERS,
        "input": tensor_json(x),
        "target": target,
        "loss": "cross_entropy",
        "params": {k: tensor_json(v) for k, v in params.items()},
    }
    specs = [
        ("sgd", "sgd", {"lr": 0.1}, False, None),
        ("sgd_weight_decay", "sgd", {"lr": 0.1, "weight_decay": 0.01}, False, None),
        ("sgd_momentum", "sgd", {"lr": 0.1, "momentum": 0.9}, False, None),
        ("sgd_momentum_dampening", "sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}, False, None),
        ("sgd_nesterov_wd", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, False, None),
        ("sgd_nesterov_decay_exempt", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}, True, None),
        ("sgd_clip", "sgd", {"lr": 0.5}, False, 0.5),
        ("adam", "adam", {"lr": 0.01}, False, None),
        ("adam_weight_decay", "adam", {"lr": 0.01, "weight_decay": 0.1}, False, None),
        ("adamw", "adamw", {"lr": 0.01, "weight_decay": 0.1}, False, None),
        ("adamw_decay_exempt", "adamw", {"lr": 0.01, "weight_decay": 0.1}, True, None),
        ("rmsprop", "rmsprop", {"lr": 0.01}, False, None),
        ("rmsprop_momentum_centered", "rmsprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}, False, None),
        ("adagrad", "adagrad", {"lr": 0.1}, False, None),
        ("adagrad_lr_decay_wd", "adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01}, False, None),
    ]  # fmt: skip
    cases = [
        opt_case(name, opt, hyper, x, target, params, decay_exempt=de, clip=clip)
        for name, opt, hyper, de, clip in specs
    ]
    return {"model": model, "cases": cases}


# ----------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------


def is_scalar(v):
    return v is None or isinstance(v, (bool, int, float, str))


def dump(value, indent=0):
    """JSON with nested objects indented and flat lists kept on one line."""
    pad = "  " * (indent + 1)
    end = "  " * indent
    if is_scalar(value):
        return json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {dump(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, (list, tuple)):
        if all(is_scalar(v) for v in value):
            return json.dumps(list(value), allow_nan=False, separators=(", ", ": "))
        if all(isinstance(v, dict) and set(v) <= {"type", "in", "out", "bias", "features",
                                                   "eps", "momentum", "affine", "kind", "param"}
               for v in value):
            # layer lists: one layer per line
            items = [f"{pad}{json.dumps(v, allow_nan=False)}" for v in value]
        else:
            items = [f"{pad}{dump(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    raise TypeError(type(value))


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: torch_reference.py OUTPUT.json\n")
        return 2
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)

    doc = {
        "generator": GENERATOR,
        "torch_version": torch.__version__,
        "networks": network_cases(),
        "batch_norm_running": bn_cases(),
        "optimizers": optimizer_section(),
    }
    text = dump(doc) + "\n"
    # Round-trip check: the file parses back to the same document.
    if json.loads(text) != json.loads(json.dumps(doc)):
        raise AssertionError("JSON round trip mismatch")
    with open(argv[1], "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(
        f"wrote {argv[1]}: {len(doc['networks'])} network cases, "
        f"{len(doc['batch_norm_running'])} batch-norm cases, "
        f"{len(doc['optimizers']['cases'])} optimizer cases (torch {torch.__version__})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
