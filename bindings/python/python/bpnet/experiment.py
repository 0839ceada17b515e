"""The batch-normalization studies of ``bpnet experiment`` on the bundled
MNIST: each writes the command line's CSV curves, figures (PNG, SVG),
``config.json``, ``results.json`` and ``report.html`` into ``out`` and
returns its numbers as Python objects.

Example::

    import bpnet
    res = bpnet.experiment.bn_mnist(quick=True, out="bn-experiments")
    for net in res.summary["networks"]:
        print(net["label"], net["final_accuracy"])
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from pathlib import Path

from . import _bpnet


@dataclass
class StudyResult:
    """One study's outcome."""

    study: str
    """Short name: paper, lr, depth or population."""
    title: str
    """Its section title in the report."""
    summary: dict
    """Its measured numbers (the study's part of ``results.json``)."""
    seconds: float
    """Wall time it took."""
    out: Path
    """The folder with its files and ``report.html``."""

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.out / "report.html"


def _run(which, quick, out, **settings):
    settings = {k: v for k, v in settings.items() if v is not None}
    for k, v in settings.items():
        # A negative or huge whole number raised OverflowError from the engine.
        if isinstance(v, numbers.Integral) and not isinstance(v, bool) and not 0 <= v < 2**64:
            raise ValueError(f"{k} must be a whole number from 0 to 2**64 - 1, got {v}")
    out = Path(out)
    text = _bpnet.run_experiment(which, bool(quick), str(out), **settings)
    return [StudyResult(r["study"], r["title"], r["summary"], r["seconds"], out) for r in json.loads(text)]


def bn_mnist(quick=True, out="bn-experiments", *, steps=None, lr=None, init_std=None, batch_size=None,
             eval_every=None, seed=None, train_limit=None, test_limit=None, mnist=None, quiet=True,
             overwrite=False) -> StudyResult:
    """The paper's Figure 1 (``bpnet experiment bn-mnist``): the 784-100-100-100-10
    sigmoid network with and without batch normalization on the same batches;
    test accuracy and the sigmoid-input percentiles over training.

    quick: 5,000 steps evaluated every 250 instead of 50,000 every 500.
    Other settings override the defaults as the command's flags do.
    """
    return _run("bn-mnist", quick, out, steps=steps, lr=lr, init_std=init_std, batch_size=batch_size,
                eval_every=eval_every, seed=seed, train_limit=train_limit, test_limit=test_limit,
                mnist=None if mnist is None else str(mnist), quiet=quiet, overwrite=overwrite)[0]


def _study(which, doc):
    def run(quick=True, out="bn-experiments", **settings) -> StudyResult:
        if "mnist" in settings and settings["mnist"] is not None:
            settings["mnist"] = str(settings["mnist"])
        return _run(which, quick, out, **settings)[0]

    run.__name__ = which
    run.__doc__ = doc + "\n\nSettings as for :func:`bn_mnist`."
    return run


lr = _study("lr", "Learning rates x1, x5, x30 with and without batch normalization (``bpnet experiment lr``).")
depth = _study("depth", "A deep sigmoid network's per-layer gradient norms (``bpnet experiment depth``).")
population = _study(
    "population",
    "Running, cumulative and recomputed population statistics at inference (``bpnet experiment population``).",
)


def all_studies(quick=True, out="bn-experiments", **settings) -> list[StudyResult]:
    """The four studies into one report (``bpnet experiment all``)."""
    if settings.get("mnist") is not None:
        settings["mnist"] = str(settings["mnist"])
    return _run("all", quick, out, **settings)
