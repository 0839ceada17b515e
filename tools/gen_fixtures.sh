#!/usr/bin/env bash
# Regenerate crates/bpnet/tests/fixtures/torch_reference.json from tools/torch_reference.py
# and crates/bpnet/tests/fixtures/label_smoothing.json from tools/torch_label_smoothing.py.
#
# Creates a virtual environment at tools/.venv if it is missing, installs the
# pinned torch (and numpy) from PyPI into it when the installed torch is not the
# pinned version, then runs the generator.  Run from anywhere:
#     bash tools/gen_fixtures.sh
set -euo pipefail

TORCH_VERSION="2.15.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="tools/.venv"
PY="$VENV/bin/python"
OUT="crates/bpnet/tests/fixtures/torch_reference.json"

if [ ! -x "$PY" ]; then
    echo "creating virtual environment $VENV"
    python3 -m venv "$VENV"
fi

installed="$("$PY" -c 'import importlib.metadata as m
try:
    import numpy  # noqa: F401
    print(m.version("torch"))
except Exception:
    print("none")' 2>/dev/null || echo none)"

if [ "$installed" != "$TORCH_VERSION" ]; then
    echo "installing torch==$TORCH_VERSION and numpy into $VENV (found: $installed)"
    "$PY" -m pip install --quiet "torch==$TORCH_VERSION" numpy
fi

mkdir -p "$(dirname "$OUT")"
"$PY" tools/torch_reference.py "$OUT"
sha256sum "$OUT"
SMOOTH="crates/bpnet/tests/fixtures/label_smoothing.json"
"$PY" tools/torch_label_smoothing.py "$SMOOTH"
sha256sum "$SMOOTH"
