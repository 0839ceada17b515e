"""Shared fixtures: the `bpnet` command-line binary and small data sets.

The CLI tests need the binary: BPNET_BIN, else target/release/bpnet, else
target/debug/bpnet under the repository root. Without one they skip, unless
CI is set (as .ci/run sets it), where a missing binary fails the run.
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


def _find_bin():
    env = os.environ.get("BPNET_BIN")
    if env:
        return Path(env)
    for kind in ("release", "debug"):
        p = ROOT / "target" / kind / "bpnet"
        if p.exists():
            return p
    return None


@pytest.fixture(scope="session")
def bpnet_bin():
    p = _find_bin()
    if p is None or not p.exists():
        msg = "no bpnet binary (build it with `cargo build --release -p bpnet-cli` or set BPNET_BIN)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


@pytest.fixture(scope="session")
def run_cli(bpnet_bin):
    def run(*args, cwd=None):
        r = subprocess.run([str(bpnet_bin), *map(str, args)], capture_output=True, text=True, cwd=cwd)
        assert r.returncode == 0, f"bpnet {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}"
        return r.stdout

    return run


def blobs(n=240, d=5, classes=3, seed=0):
    """Separable-ish Gaussian blobs with integer labels."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X, y


def linear(n=200, d=4, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([1.0, 10.0, 0.1, 3.0])[:d]
    y = X @ np.arange(1, d + 1) * 0.5 + rng.normal(scale=0.1, size=n) + 4.0
    return X, y


def write_csv(path, X, y, header=True):
    """The CSV a user would write: shortest round-trip numbers, labels as text."""
    d = X.shape[1]
    lines = []
    if header:
        lines.append(",".join([f"f{j}" for j in range(d)] + ["target"]))
    for row, t in zip(X, y):
        lines.append(",".join([repr(float(v)) for v in row] + [str(t)]))
    Path(path).write_text("\n".join(lines) + "\n")


def write_rows(path, X, header=None):
    """Feature rows only, shortest round-trip numbers."""
    lines = [] if header is None else [",".join(header)]
    lines += [",".join(repr(float(v)) for v in row) for row in X]
    Path(path).write_text("\n".join(lines) + "\n")


def pytest_runtest_logreport(report):
    """With CI set, a skipped test (not an expected failure) is a failure:
    nothing the suite needs may be silently missing."""
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI: {report.longrepr}"
