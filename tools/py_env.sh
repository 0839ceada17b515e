#!/usr/bin/env bash
# Creates (or reuses) the virtual environment for the Python package: pinned
# maturin, numpy, scikit-learn, pandas, pytest and onnxruntime from PyPI; then builds and
# installs bindings/python into it (pip install through maturin, PEP 517) and
# prints the path of its interpreter on the last line of stdout.
#     PY="$(bash tools/py_env.sh | tail -n 1)"
#     "$PY" -m pytest bindings/python/tests
# Progress goes to stderr. The environment lives in tools/.venv-py (ignored by
# git); a second run with the pinned versions already there only rebuilds the
# package (cargo reuses target/, so an unchanged crate builds in seconds).
# BPNET_PY_TORCH=1 also installs PyTorch (for bench/python_vs_sklearn.py).
# BPNET_PY_SKIP_BUILD=1 leaves the installed package as it is.
# BPNET_PY_DEBUG=1 builds the dev profile (dependencies optimized, the
# engine not: quicker to build, slower to train; what .ci/run uses).
set -euo pipefail

MATURIN_VERSION="1.16.0"
NUMPY_VERSION="2.4.6"
SKLEARN_VERSION="1.9.1"
PANDAS_VERSION="3.1.1"
PYTEST_VERSION="9.2.0"
ORT_VERSION="1.32.0"
TORCH_VERSION="2.15.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/tools/.venv-py"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "creating virtual environment $VENV" >&2
    python3 -m venv "$VENV" >&2
fi

want="$MATURIN_VERSION $NUMPY_VERSION $SKLEARN_VERSION $PANDAS_VERSION $PYTEST_VERSION $ORT_VERSION"
have="$("$PY" -c 'import importlib.metadata as m
try:
    print(*(m.version(p) for p in ("maturin", "numpy", "scikit-learn", "pandas", "pytest", "onnxruntime")))
except Exception:
    print("none")' 2>/dev/null || echo none)"

if [ "$have" != "$want" ]; then
    echo "installing maturin numpy scikit-learn pandas pytest onnxruntime into $VENV (found: $have)" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "maturin==$MATURIN_VERSION" "numpy==$NUMPY_VERSION" "scikit-learn==$SKLEARN_VERSION" \
        "pandas==$PANDAS_VERSION" "pytest==$PYTEST_VERSION" "onnxruntime==$ORT_VERSION" >&2
fi

if [ "${BPNET_PY_TORCH:-0}" = "1" ] && ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "installing torch==$TORCH_VERSION (CPU) into $VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" >&2
fi

if [ "${BPNET_PY_SKIP_BUILD:-0}" != "1" ]; then
    # maturin develop builds in release mode into the workspace's target/
    # (shared with cargo, so repeated runs are incremental) and installs the
    # package into the environment, as `pip install ./bindings/python` would.
    profile="--release"
    if [ "${BPNET_PY_DEBUG:-0}" = "1" ]; then profile=""; fi
    echo "building and installing bindings/python (maturin develop $profile)" >&2
    (cd "$ROOT/bindings/python" && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" \
        "$VENV/bin/maturin" develop $profile --quiet >&2)
fi

echo "$PY"
