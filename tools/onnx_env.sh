#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment the ONNX Runtime test
# uses, with pinned onnx, onnxruntime and numpy from PyPI, and prints the path
# of its interpreter on the last line of stdout. Run from anywhere:
#     export BPNET_ONNX_PYTHON="$(bash tools/onnx_env.sh | tail -n 1)"
#     cargo test -p bpnet-cli --test onnx_runtime
# Progress goes to stderr. The environment lives in tools/.venv-onnx (ignored
# by git); a second run with the pinned versions already there installs nothing.
set -euo pipefail

ONNX_VERSION="1.23.2"
ORT_VERSION="1.32.0"
NUMPY_VERSION="2.4.6"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/tools/.venv-onnx"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "creating virtual environment $VENV" >&2
    python3 -m venv "$VENV" >&2
fi

want="$ONNX_VERSION $ORT_VERSION $NUMPY_VERSION"
have="$("$PY" -c 'import importlib.metadata as m
try:
    print(m.version("onnx"), m.version("onnxruntime"), m.version("numpy"))
except Exception:
    print("none")' 2>/dev/null || echo none)"

if [ "$have" != "$want" ]; then
    echo "installing onnx==$ONNX_VERSION onnxruntime==$ORT_VERSION numpy==$NUMPY_VERSION into $VENV (found: $have)" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "onnx==$ONNX_VERSION" "onnxruntime==$ORT_VERSION" "numpy==$NUMPY_VERSION" >&2
fi

echo "$PY"
