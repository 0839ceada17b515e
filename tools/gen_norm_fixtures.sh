#!/usr/bin/env bash
# Regenerate crates/bpnet/tests/fixtures/norm_reference.json (layer
# normalization and Ghost BN references) from tools/norm_reference.py.
#
# Uses the same virtual environment as tools/gen_fixtures.sh (tools/.venv with
# the pinned torch and numpy from PyPI), creating it when missing.  Run from
# anywhere:
#     bash tools/gen_norm_fixtures.sh
set -euo pipefail

TORCH_VERSION="2.15.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="tools/.venv"
PY="$VENV/bin/python"
OUT="crates/bpnet/tests/fixtures/norm_reference.json"

if [ ! -x "$PY" ]; then
    echo "creating virtual environment $VENV"
    python3 -m venv "$VENV"
fi

installed="$("$PY" -c 'import importlib.metadata as m
try:
    import numpy, torch  # noqa: F401
    print(m.version("torch"))
except Exception:
    print("none")' 2>/dev/null || echo none)"

if [ "$installed" != "$TORCH_VERSION" ]; then
    echo "installing torch==$TORCH_VERSION and numpy into $VENV (found: $installed)"
    "$PY" -m pip install --quiet "torch==$TORCH_VERSION" numpy
fi

mkdir -p "$(dirname "$OUT")"
"$PY" tools/norm_reference.py "$OUT"
sha256sum "$OUT"
