#!/usr/bin/env bash
# Regenerates crates/bpnet/tests/fixtures/torch_import/ from tools/torch_import_fixture.py.
#
# Uses the virtual environment tools/.venv (created if missing, shared with
# tools/gen_fixtures.sh) and installs the pinned torch, safetensors and numpy
# from PyPI into it when the installed versions differ. Run from anywhere:
#     bash tools/gen_torch_import.sh
set -euo pipefail

TORCH_VERSION="2.15.0"
SAFETENSORS_VERSION="0.8.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="tools/.venv"
PY="$VENV/bin/python"
OUT="crates/bpnet/tests/fixtures/torch_import"

if [ ! -x "$PY" ]; then
    echo "creating virtual environment $VENV"
    python3 -m venv "$VENV"
fi

installed="$("$PY" -c 'import importlib.metadata as m
try:
    import numpy  # noqa: F401
    print(m.version("torch"), m.version("safetensors"))
except Exception:
    print("none")' 2>/dev/null || echo none)"

if [ "$installed" != "$TORCH_VERSION $SAFETENSORS_VERSION" ]; then
    echo "installing torch==$TORCH_VERSION safetensors==$SAFETENSORS_VERSION numpy into $VENV (found: $installed)"
    "$PY" -m pip install --quiet "torch==$TORCH_VERSION" "safetensors==$SAFETENSORS_VERSION" numpy
fi

"$PY" tools/torch_import_fixture.py "$OUT"
sha256sum "$OUT"/*
