#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment of the data-ingestion
# benchmark (bench/csv_ingest.sh): pinned polars, pandas, pyarrow and numpy
# from PyPI. Prints the path of its interpreter on the last line of stdout;
# progress goes to stderr. The environment lives in bench/.venv-data (ignored
# by git); a second run with the pinned versions already there installs nothing.
set -euo pipefail

POLARS_VERSION="2.1.0"
PANDAS_VERSION="3.1.1"
PYARROW_VERSION="26.0.1"
NUMPY_VERSION="2.4.6"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/bench/.venv-data"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    echo "creating virtual environment $VENV" >&2
    python3 -m venv "$VENV" >&2
fi

want="$POLARS_VERSION $PANDAS_VERSION $PYARROW_VERSION $NUMPY_VERSION"
have="$("$PY" -c 'import importlib.metadata as m
try:
    print(m.version("polars"), m.version("pandas"), m.version("pyarrow"), m.version("numpy"))
except Exception:
    print("none")' 2>/dev/null || echo none)"

if [ "$have" != "$want" ]; then
    echo "installing polars==$POLARS_VERSION pandas==$PANDAS_VERSION pyarrow==$PYARROW_VERSION numpy==$NUMPY_VERSION into $VENV (found: $have)" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "polars==$POLARS_VERSION" "pandas==$PANDAS_VERSION" "pyarrow==$PYARROW_VERSION" "numpy==$NUMPY_VERSION" >&2
fi

echo "$PY"
