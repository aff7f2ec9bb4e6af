"""What the guard's backoff (MDSettings.backoff: halve the bias and go on from the last sane state) keeps of a
biased pool: the demo benchmark's entropy pool (reference driver, Si, k_g = 2 kT, 600 and 1500 K, 0 and 10 GPa,
two repeats) explored with backoff 0 and 2 from the same seeds; per setting the trajectories stopped, the ones
that went on with a halved bias, the snapshots and the MD steps run.

    python benches/experiments/guard_backoff.py OUT_FOLDER [--backoffs 0 2]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from dael.benchmark.demo import demo_campaign
from dael.campaign.presets import phases
from dael.explore.explorer import Explorer, grid
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.natx import padded_settings


def explore(backoff: int, out: Path) -> dict:
    """The demo benchmark's entropy pool with `backoff`; a summary of its trajectories."""
    campaign = demo_campaign()
    e, bench = replace(campaign.explore, backoff=backoff), campaign.benchmark
    seeds = phases(campaign.system)
    md = e.md(snapshots=bench.snapshots)
    jobs = [job for rep in range(bench.repeats)
            for job in grid(seeds, e.pressures, e.temperatures, e.k_global, e.k_local, md, random_baseline=False,
                            seed=campaign.seed + 10_000 * rep, bias_scale=e.bias_scale)]
    settings = padded_settings(list(seeds.values()), campaign.filter.cutoff, pressure=max(e.pressures))
    state = GlobalEntropy("atom", campaign.filter.eps, settings)
    result = Explorer(campaign.driver, state, out / f"backoff-{backoff}", min_gain=-np.inf, workers=1,
                      driver_params=campaign.driver_params).run(jobs)
    t = result.trajectories
    return {"backoff": backoff, "trajectories": len(t),
            "stopped": sum(x["status"] != "ok" for x in t),
            "bias_halved": sum(bool(x.get("bias_halved")) for x in t),
            "snapshots": sum(x["snapshots"] for x in t),
            "hot_snapshots": sum(x["snapshots"] for x in t if "_T1500_" in x["name"]),
            "stops": [x["status"] for x in t if x["status"] != "ok"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--backoffs", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    for backoff in args.backoffs:
        print(json.dumps(explore(backoff, args.out)))


if __name__ == "__main__":
    main()
