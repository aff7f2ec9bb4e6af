"""Hypothesis test (experiments.md section 22): `stream-fill` and `mixed` fill the rest of a set with the
snapshots the filter rejected trajectory by trajectory, so a set of N = 400 from NaCl's 48-trajectory pool
holds 35–37 trajectories, some nearly whole, where random MD holds all 48 evenly. This runs a benchmark in
which the fill takes the rejects round-robin over their trajectories instead (strategies.stream_order_spread);
the filter's own picks are unchanged.

Usage: python benches/experiments/fill_spread.py CAMPAIGN FOLDER BASE [--sizes 400] [--draws 2]
       [--strategies mixed random]
FOLDER: a new benchmark folder; copy pools/*.extxyz, labels.db and labels.done of the run to compare with into
it first (and its random-MD models: their sets do not depend on the fill), so that only the fill differs.
"""

from __future__ import annotations

import argparse

import strategies  # benches/experiments/strategies.py, beside this script

import dael.benchmark.strategies
from dael.benchmark.run import run_benchmark
from dael.campaign.folder import load


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("campaign")
    p.add_argument("folder")
    p.add_argument("base", help="the base every model fine-tunes from (dael distill's folder)")
    p.add_argument("--sizes", type=int, nargs="+", default=[400])
    p.add_argument("--draws", type=int, default=2)
    p.add_argument("--strategies", nargs="+", default=["mixed", "random"])
    args = p.parse_args()
    dael.benchmark.strategies.stream_order = strategies.stream_order_spread
    campaign, seeds = load(args.campaign)
    campaign.benchmark.sizes, campaign.benchmark.draws = args.sizes, args.draws
    run_benchmark(campaign, seeds, args.folder, strategies=args.strategies, base=args.base)


if __name__ == "__main__":
    main()
