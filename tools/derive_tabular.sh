#!/usr/bin/env bash
# Derives the small tabular datasets under data/ (iris.csv, wine.csv,
# diabetes.csv) from the CSV files that scikit-learn ships inside its wheel
# (sklearn/datasets/data/). Only PyPI is contacted. See data/README-tabular.md.
#
# Usage: tools/derive_tabular.sh [OUT_DIR]   (default: data/)
set -euo pipefail

SKLEARN_VERSION="${SKLEARN_VERSION:-1.9.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/data}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --only-binary=:all: \
    "scikit-learn==${SKLEARN_VERSION}" -d "$work"
wheel="$(ls "$work"/scikit_learn-*.whl)"
unzip -q -o "$wheel" 'sklearn/datasets/data/*' -d "$work"
src="$work/sklearn/datasets/data"
mkdir -p "$out"

python3 - "$src" "$out" <<'PY'
import csv, gzip, sys
src, out = sys.argv[1], sys.argv[2]

def write(name, header, rows):
    with open(f"{out}/{name}", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"{out}/{name}: {len(rows)} rows, {len(header)} columns")

def labelled(path, feature_names, target):
    # sklearn layout: first line "n_samples,n_features,class names...",
    # then rows of features followed by the integer class index.
    with open(path) as f:
        r = csv.reader(f)
        first = next(r)
        n, d, names = int(first[0]), int(first[1]), first[2:]
        assert d == len(feature_names), (path, d)
        rows = [row[:d] + [names[int(row[d])]] for row in r]
    assert len(rows) == n, (path, len(rows), n)
    return feature_names + [target], rows

iris = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
write("iris.csv", *labelled(f"{src}/iris.csv", iris, "species"))

wine = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium",
        "total_phenols", "flavanoids", "nonflavanoid_phenols",
        "proanthocyanins", "color_intensity", "hue",
        "od280_od315_of_diluted_wines", "proline"]
write("wine.csv", *labelled(f"{src}/wine_data.csv", wine, "cultivar"))

# Diabetes: the raw (unscaled) features, space separated, and the target.
with gzip.open(f"{src}/diabetes_data_raw.csv.gz", "rt") as f:
    x = [line.split() for line in f if line.strip()]
with gzip.open(f"{src}/diabetes_target.csv.gz", "rt") as f:
    y = [line.strip() for line in f if line.strip()]
assert len(x) == len(y) == 442
y = ["%g" % float(v) for v in y]
cols = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"]
write("diabetes.csv", cols, [row + [t] for row, t in zip(x, y)])
PY
(cd "$out" && sha256sum iris.csv wine.csv diabetes.csv)
