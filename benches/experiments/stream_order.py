"""What a small budget covers under each exploration order: the stream strategies' training sets of a
benchmark's pools drawn in many exploration orders ('random' and 'stratified', dael.explore.order), and how evenly
each set spans the grid (no training).

Usage: python benches/experiments/stream_order.py CAMPAIGN FOLDER [--sizes 100 200] [--draws 200]
       [--strategies stream-fill mixed]
CAMPAIGN: the campaign folder; FOLDER: its `dael benchmark` folder (pools labelled). Prints a markdown table per
(strategy, N, order), over the draws: the smallest phase's share of the biased-MD part of the set (mean, and
the 5th percentile), the share of the grid's (phase, pressure, temperature) points it holds snapshots of, and
the draws in which one phase has under half its even share.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from ase.io import read

from dael.benchmark.pools import label_pools, pool_fingerprints
from dael.benchmark.sets import draw_rng, selection_pools
from dael.benchmark.strategies import select_sets
from dael.campaign.folder import load


def coverage(keys: list[str], entropy: list, phases: list[str], points: int) -> tuple[float, float]:
    """(smallest phase share, share of grid points held) of a set's biased-MD members (keys 'e<i>')."""
    tags = [entropy[int(k[1:])].info for k in keys if k[0] == "e"]
    shares = [sum(t["phase"] == p for t in tags) / max(1, len(tags)) for p in phases]
    held = {(t["phase"], t["pressure_GPa"], t["temperature_K"]) for t in tags}
    return min(shares), len(held) / points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("campaign", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--strategies", nargs="+", default=["stream-fill", "mixed"])
    args = parser.parse_args()
    campaign, seeds = load(args.campaign)
    pools = {name: read(args.folder / "pools" / f"{name}.extxyz", ":") for name in ("entropy", "random", "anchor")}
    data = label_pools(campaign, pools, args.folder, say=lambda line: None)
    fps = pool_fingerprints(data, campaign.filter.cutoff)
    phases = sorted(seeds)
    e = campaign.explore
    points = len(phases) * len(e.pressures) * len(e.temperatures)
    print(f"{campaign.system}: {len(data['entropy'])} biased-MD snapshots, {len(phases)} phases, {points} grid "
          f"points; {args.draws} draws per order.\n")
    print("| strategy | N | order | smallest phase share: mean | 5th percentile | grid points held "
          "| draws with a phase under half its share |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for strategy in args.strategies:
        for order in ("random", "stratified"):
            choose = replace(selection_pools(campaign, data, fps), order=order)
            stats = {n: [] for n in args.sizes}
            for d in range(args.draws):
                for n, keys in select_sets(strategy, choose, args.sizes, draw_rng(campaign, strategy, d)).items():
                    stats[n].append(coverage(keys, data["entropy"], phases, points))
            for n in args.sizes:
                low, held = np.array(stats[n]).T
                print(f"| {strategy} | {n} | {order} | {low.mean():.3f} | {np.percentile(low, 5):.3f} | "
                      f"{held.mean():.2f} | {np.mean(low < 0.5 / len(phases)):.1%} |")


if __name__ == "__main__":
    main()
