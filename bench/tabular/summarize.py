"""Tables of run.py results: per set, the median score over seeds of each
method and its median fit time, and whether the first method is at least
as good as each other (median over seeds).

Usage: python summarize.py [--half choice|held-out] RESULTS.json [MORE.json ...] > table.md
"""

import json
import statistics
import sys


def main():
    args = sys.argv[1:]
    half = None
    if args[:1] == ["--half"]:
        half, args = args[1], args[2:]
    results = []
    for path in args:
        with open(path) as f:
            results += [r for r in json.load(f)["results"] if half is None or r["half"] == half]
    methods = list(dict.fromkeys(r["method"] for r in results))
    sets = list(dict.fromkeys(r["set"] for r in results))
    cell = {}
    for r in results:
        cell.setdefault((r["set"], r["method"]), []).append(r)
    head = "| set | half | task | seeds | " + " | ".join(f"{m} score" for m in methods) + " | " + \
        " | ".join(f"{m} fit s" for m in methods) + " |"
    print(head)
    print("|" + "---|" * (4 + 2 * len(methods)))
    wins = {m: 0 for m in methods[1:]}
    for s in sets:
        rows = [cell.get((s, m), []) for m in methods]
        first = next(r for r in rows if r)[0]
        scores = [statistics.median(x["score"] for x in r) if r else float("nan") for r in rows]
        times = [statistics.median(x["seconds"] for x in r) if r else float("nan") for r in rows]
        best = max(v for v in scores if v == v)
        fmt = [f"**{v:.4f}**" if v == best else f"{v:.4f}" for v in scores]
        print(f"| {s} | {first['half']} | {first['task']} | {len(rows[0])} | " + " | ".join(fmt) + " | " +
              " | ".join(f"{t:.2f}" for t in times) + " |")
        for m, v in zip(methods[1:], scores[1:]):
            if scores[0] >= v:
                wins[m] += 1
    print()
    print(f"{methods[0]} at least as good as (median over seeds): " +
          ", ".join(f"{m} on {w} of {len(sets)} sets" for m, w in wins.items()))


if __name__ == "__main__":
    main()
