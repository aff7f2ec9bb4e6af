"""Which grid points of a preset are unstable phases (docs/method.md §5, `explore.unstable`): the quench drop
of each (phase, pressure, temperature) after the explorer's unbiased thermalisation, for several seeds.

Usage: python benches/experiments/unstable_phases.py SYSTEM [--seeds 4] [--driver reference] [--thermalize 100]
Prints one line per grid point: the drops in eV/atom (> explore.unstable: the trajectory would run unbiased).
"""

from __future__ import annotations

import argparse
import time

from dael.calculators.registry import make_calculator
from dael.campaign.presets import phases, preset
from dael.explore.md import LocalEntropyBias, run_md


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--driver", default="reference")
    parser.add_argument("--thermalize", type=int, default=100)
    args = parser.parse_args()
    e = preset(args.system).explore
    driver = make_calculator(args.driver)
    watcher = LocalEntropyBias(driver, k=0.0)  # not the driver itself, so run_md checks; adds nothing
    for phase, atoms in phases(args.system).items():
        for p in e.pressures:
            for t in e.temperatures:
                start = time.perf_counter()
                drops = [run_md(atoms, driver, watcher, e.md(temperature=t, pressure=p, steps=1, snapshots=1,
                                                             thermalize=args.thermalize, unstable=1e9,
                                                             seed=seed)).quench_drop
                         for seed in range(args.seeds)]
                print(f"{args.system} {phase:12s} {p:5g} GPa {t:6g} K  drops (eV/atom) "
                      + " ".join(f"{d:+.4f}" for d in drops) + f"  ({time.perf_counter() - start:.0f} s)",
                      flush=True)


if __name__ == "__main__":
    main()
