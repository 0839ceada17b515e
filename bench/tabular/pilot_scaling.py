"""Pilot of other feature scalings for bpnet on the choice half, without
changing bpnet: writes a copy of DATA_DIR whose numeric feature columns
(more than two distinct values) are rescaled, each fitted on its train file
and applied to the matching test file; bpnet then trains on the copy with
`--scaling none` (`run.py COPY ... --bpnet-args "--scaling none"`).

Modes:
  robust         (x - median) / s, s = IQR / 1.349 (the sd for normal data;
                 the sd if the IQR is 0, else 1), then the smooth clip
                 z / sqrt(1 + (z / 3)^2) (RealMLP-TD's preprocessing idea)
  robust-noclip  the same without the clip
  zscore-clip    (x - mean) / sd, then the smooth clip

Usage: python pilot_scaling.py DATA_DIR OUT_DIR MODE
Binary (two-valued) columns, categorical columns, empty cells and the
target (last column) are left as they are.
"""
import csv
import math
import os
import shutil
import sys

import numpy as np

from run import kinds_of


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def center_scale(v, mode):
    if mode == "zscore-clip":
        center, s = v.mean(), v.std()
    else:
        center = np.median(v)
        q25, q75 = np.quantile(v, [0.25, 0.75])
        s = (q75 - q25) / 1.349
        if s <= 0:
            s = v.std()
    return center, (s if s > 0 else 1.0)


def main(src, dst, mode):
    if mode not in ("robust", "robust-noclip", "zscore-clip"):
        sys.exit(f"unknown mode {mode}")
    os.makedirs(dst, exist_ok=True)
    shutil.copy(os.path.join(src, "sets.json"), dst)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".train.csv"):
            continue
        base = name[: -len(".train.csv")]
        header, train = read(os.path.join(src, name))
        _, test = read(os.path.join(src, base + ".test.csv"))
        kinds = kinds_of(train + test, len(header) - 1)
        for j in range(len(header) - 1):
            if kinds[j] != "numeric":
                continue
            v = np.array([float(r[j]) for r in train if r[j] != ""])
            if len(np.unique(v)) <= 2:
                continue
            center, s = center_scale(v, mode)
            for rows in (train, test):
                for r in rows:
                    if r[j] != "":
                        z = (float(r[j]) - center) / s
                        if mode != "robust-noclip":
                            z = z / math.sqrt(1 + (z / 3) ** 2)
                        r[j] = repr(float(z))
        for out_name, rows in ((name, train), (base + ".test.csv", test)):
            with open(os.path.join(dst, out_name), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(rows)


if __name__ == "__main__":
    main(*sys.argv[1:4])
