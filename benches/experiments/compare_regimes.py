"""Training regimes on the same training sets: `dael benchmark` folders that share their pools, labels and
sets.json (from scratch vs `--from BASE`, or two loss weightings), compared model by model; with one folder,
that benchmark's learning-curve table.

Usage: python benches/experiments/compare_regimes.py FOLDER [FOLDER ...] [--sets test,holdout-entropy]
       [--metric energy_mae|force_mae|stress_mae] [--strategies stream-fill,mixed,random]
       [--labels scratch,fine-tuned]
Prints a markdown table: per evaluation set and N, each strategy's error (mean over the draws every folder
trained) first → second → ..., and the ratio random MD / best entropy-driven strategy in each regime (> 1:
the entropy-driven set is better). Units: meV/atom, meV/Å, meV/Å³.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def evaluation(folder: Path, strategy: str, n: int, draw: int) -> Path:
    """The evaluation.json of one benchmark model."""
    return folder / "models" / f"{strategy}-N{n}-d{draw}" / "evaluation.json"


def errors(folder: Path, strategy: str, n: int, draws: list[int], which: str, metric: str) -> float | None:
    """Mean over `draws` (all evaluated) of one model's error on evaluation set `which` (None when a model has
    no such set or metric)."""
    values = [json.loads(evaluation(folder, strategy, n, d).read_text()).get(which, {}).get(metric) for d in draws]
    return None if any(v is None for v in values) else float(np.mean(values))


def shared_draws(folders: list[Path], strategies: list[str], n: int) -> list[int]:
    """The draws evaluated for every strategy at size n in every folder (draws are numbered from 0)."""
    draws = []
    while all(evaluation(f, s, n, len(draws)).exists() for f in folders for s in strategies):
        draws.append(len(draws))
    return draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--sets", default="test,test-strain,holdout-entropy,holdout-random,transfer,md")
    parser.add_argument("--metric", default="energy_mae")
    parser.add_argument("--strategies", default="stream-fill,mixed,random")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400, 800])
    parser.add_argument("--labels", default="scratch,fine-tuned", help="names of the regimes (several folders)")
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    folders = args.folders
    labels = args.labels.split(",")
    labels = labels if len(labels) >= len(folders) else [f.name for f in folders]  # too few names: the folders'
    names = f": {' → '.join(labels[:len(folders)])}" if len(folders) > 1 else ""
    print("| set | N | draws | " + " | ".join(f"{s}{names}" for s in strategies)
          + f" | random / best entropy-driven{names} |")
    print("|---|---:|---:|" + "---:|" * (len(strategies) + 1))
    for which in args.sets.split(","):
        for n in args.sizes:
            draws = shared_draws(folders, strategies, n)
            if not draws:
                continue
            table = {(f, s): errors(f, s, n, draws, which, args.metric) for f in folders for s in strategies}
            cells = [" → ".join("–" if table[f, s] is None else f"{table[f, s]:.2f}" for f in folders)
                     for s in strategies]
            ratios = []
            for f in folders:
                best = min((table[f, s] for s in strategies if s != "random" and table[f, s] is not None),
                           default=None)
                random = table.get((f, "random"))
                ratios.append("–" if best is None or random is None else f"{random / best:.2f}")
            print(f"| {which} | {n} | {len(draws)} | " + " | ".join(cells) + f" | {' → '.join(ratios)} |")


if __name__ == "__main__":
    main()
