"""The decision rule of experiments.md section 33 on two benchmark folders that differ only in explore.k_local:
mixed with the local term against mixed without it on the test energy (no worse: ratio >= 0.95 or within the
draws' combined standard error), and on what the bias buys (better by more than the combined standard error:
the accepted own holdout's ratio to random MD, or the model's own MD energy error).

    python benches/experiments/local_term.py WITHOUT_FOLDER WITH_FOLDER [--size 400]
"""

from __future__ import annotations

import argparse
import re

import numpy as np
from decision import energy, table

from dael.benchmark.run import folder_records

Stat = tuple[float, float, int]
SETS = ("test", "test-strain", "holdout-entropy-accepted", "holdout-random", "md", "transfer")
"""The table's sets; each test temperature's set (test-300K, ...) follows test-strain."""


def ratio(num: Stat, den: Stat) -> tuple[float, float]:
    """num / den and its standard error, propagated from both (first order)."""
    r = num[0] / den[0]
    return r, abs(r) * float(np.hypot(num[1] / num[0], den[1] / den[0]))


def verdict(without: dict, with_: dict, n: int) -> str:
    """Section 33's decision at size n, in words; raises SystemExit if a needed set was not trained."""
    need = {(w, s, p) for w in ("without", "with") for s, p in
            [("test", "mixed"), ("holdout-entropy-accepted", "mixed"), ("holdout-entropy-accepted", "random"),
             ("md", "mixed")]}
    t = {"without": without, "with": with_}
    missing = sorted(f"{s} of {p} ({w} the local term)" for w, s, p in need if energy(t[w], s, p, n) is None)
    if missing:
        raise SystemExit(f"N = {n}: not evaluated: {', '.join(missing)}")
    test0, test1 = energy(without, "test", "mixed", n), energy(with_, "test", "mixed", n)
    cost = test0[0] / test1[0]
    no_worse = cost >= 0.95 or abs(test1[0] - test0[0]) <= np.hypot(test0[1], test1[1])
    held0 = ratio(energy(without, "holdout-entropy-accepted", "random", n),
                  energy(without, "holdout-entropy-accepted", "mixed", n))
    held1 = ratio(energy(with_, "holdout-entropy-accepted", "random", n),
                  energy(with_, "holdout-entropy-accepted", "mixed", n))
    md0, md1 = energy(without, "md", "mixed", n), energy(with_, "md", "mixed", n)
    held_better = held1[0] - held0[0] > np.hypot(held0[1], held1[1])
    md_better = md0[0] - md1[0] > np.hypot(md0[1], md1[1])
    adopt = bool(no_worse and (held_better or md_better))
    return (f"N = {n}: test energy of mixed without / with = {cost:.2f} ({test0[0]:.2f} ± {test0[1]:.2f} vs "
            f"{test1[0]:.2f} ± {test1[1]:.2f} meV/atom) -> {'no worse' if no_worse else 'worse'}; accepted own "
            f"holdout random / mixed {held0[0]:.2f} ± {held0[1]:.2f} without, {held1[0]:.2f} ± {held1[1]:.2f} "
            f"with -> {'better' if held_better else 'not better'}; own MD energy of mixed {md0[0]:.2f} ± "
            f"{md0[1]:.2f} without, {md1[0]:.2f} ± {md1[1]:.2f} with -> {'better' if md_better else 'not better'}"
            f": {'k_l > 0 for this system' if adopt else 'k_l = 0 stays for this system'}")


def by_temperature(*tables: dict) -> list[str]:
    """The per-temperature test sets ('test-300K', ...) of the tables, coldest first."""
    names = {name for t in tables for name, _, _ in t if re.fullmatch(r"test-\d+K", name)}
    return sorted(names, key=lambda name: int(name[5:-1]))


def rows(without: dict, with_: dict, n: int, sets: tuple[str, ...] | None = None) -> list[str]:
    """A markdown table: energy MAE (mean ± standard error over draws) per set (default: SETS with the test
    temperatures the tables hold), strategy and k_l, and random MD's error over it (> 1: better than random MD in
    the same folder)."""
    if sets is None:
        sets = (*SETS[:2], *by_temperature(without, with_), *SETS[2:])
    out = ["| set | strategy | k_l = 0 | random / it | k_l > 0 | random / it |", "|---|---|---:|---:|---:|---:|"]
    pools = sorted({p for t in (without, with_) for _, p, m in t if m == n and p != "random"}) + ["random"]
    for name in sets:
        for pool in pools:
            cells = []
            for t in (without, with_):
                e, ref = energy(t, name, pool, n), energy(t, name, "random", n)
                cells += ["–", "–"] if e is None else [f"{e[0]:.2f} ± {e[1]:.2f}",
                                                       f"{ref[0] / e[0]:.2f}" if ref else "–"]
            if cells.count("–") < 4:
                out.append(f"| {name} | {pool} | {' | '.join(cells)} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("without", help="benchmark folder with explore.k_local [0]")
    parser.add_argument("with_", metavar="with", help="the same benchmark with k_local > 0")
    parser.add_argument("--size", type=int, default=400)
    args = parser.parse_args()
    without, with_ = table(folder_records(args.without)), table(folder_records(args.with_))
    print("\n".join(rows(without, with_, args.size)))
    print()
    print(verdict(without, with_, args.size))


if __name__ == "__main__":
    main()
