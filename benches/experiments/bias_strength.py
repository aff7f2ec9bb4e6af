"""Bias strength vs the own-holdout ratio: benchmark runs that differ only in their entropy pool's bias (k_g, k_l;
the random-MD, anchor and test pools copied from one run), each with a selection strategy's model at size N;
every run's entropy holdout is scored by the *same* random-MD models (those of RANDOM_FOLDER), so the ratios
differ only by the pool.

Usage: python benches/experiments/bias_strength.py RANDOM_FOLDER LABEL:CAMPAIGN:FOLDER [...] [--size 800]
       [--strategy stream-fill]
RANDOM_FOLDER: a `dael benchmark` folder with random-N{size}-d* models. Each LABEL:CAMPAIGN:FOLDER: a label
(e.g. the k), the run's campaign folder and its benchmark folder. Prints a markdown table: share of the entropy
pool inside the energy window, and per holdout (whole; within the window; accepted by the streaming filter in
exploration order, the paper's holdout; rejected by it, inside the window) the strategy's and random MD's energy
MAE (meV/atom, mean over draws) and their ratio (> 1: the entropy-driven set is better), plus both on the test set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.io import read

from dael.benchmark.evaluation import accepted_by_filter, holdout_indices, in_distribution_holdouts
from dael.benchmark.pools import label_pools
from dael.calculators.deploy import load_calculator
from dael.campaign.folder import load
from dael.numeric.fingerprint import fingerprint
from dael.selection.window import in_window
from dael.train.metrics import evaluate


def mean_of(models: list[Path], which: str, structures: list | None = None) -> float:
    """Mean energy MAE (meV/atom) on evaluation set `which` of benchmark models: from their evaluation.json, or
    evaluated on `structures` where a model's evaluation lacks the set (an earlier benchmark version)."""
    def one(model: Path) -> float:
        saved = json.loads((model / "evaluation.json").read_text())
        if which in saved or structures is None:
            return saved[which]["energy_mae"]
        return evaluate(load_calculator(model), structures)["energy_mae"]

    return float(np.mean([one(m) for m in models]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("random_folder", type=Path)
    parser.add_argument("runs", nargs="+", help="LABEL:CAMPAIGN:FOLDER")
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--strategy", default="stream-fill")
    args = parser.parse_args()
    randoms = sorted(args.random_folder.glob(f"models/random-N{args.size}-d*"))
    calcs = [load_calculator(m) for m in randoms]
    print(f"Random MD: {len(randoms)} models of {args.random_folder}, N = {args.size}; entropy-driven: "
          f"{args.strategy}.\n")
    print("| run | pool in window | holdout (structures) | entropy-driven | random MD | random / entropy-driven "
          "| test: entropy-driven / random |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for spec in args.runs:
        label, campaign_folder, folder = spec.split(":")
        campaign, _ = load(campaign_folder)
        folder = Path(folder)
        pools = {name: read(folder / "pools" / f"{name}.extxyz", ":") for name in ("entropy", "random")}
        data = label_pools(campaign, pools, folder, say=lambda line: None)
        fps = fingerprint(data["entropy"], cutoff=campaign.filter.cutoff, natx=None)
        accepted = accepted_by_filter(campaign, data["entropy"], fps)
        holdouts = in_distribution_holdouts(data, campaign.seed, campaign.explore.window, accepted, folder)
        inside = in_window(data["entropy"], campaign.explore.window)
        held = holdout_indices(data, campaign.seed, folder)["entropy"]
        holdouts["holdout-entropy-rejected"] = [data["entropy"][i] for i in held if inside[i] and not accepted[i]]
        share = inside.mean()
        models = sorted(folder.glob(f"models/{args.strategy}-N{args.size}-d*"))
        test = f"{mean_of(models, 'test'):.1f} / {mean_of(randoms, 'test'):.1f}"
        for which in ("holdout-entropy", "holdout-entropy-window", "holdout-entropy-accepted",
                      "holdout-entropy-rejected"):
            structures = holdouts.get(which, [])
            if not structures:
                continue
            ours = mean_of(models, which, structures)
            theirs = float(np.mean([evaluate(c, structures)["energy_mae"] for c in calcs]))
            print(f"| {label} | {share:.2f} | {which} ({len(structures)}) | {ours:.1f} | {theirs:.1f} | "
                  f"{theirs / ours:.2f} | {test} |")


if __name__ == "__main__":
    main()
