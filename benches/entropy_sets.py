"""Why entropy sets lose at small N: training sets drawn from a finished `dael benchmark` folder in other ways,
trained and evaluated exactly like the benchmark's models (same pools, holdout, test set and settings).

Sets per draw (nested over sizes): 'config' = greedy ΔH in per-configuration mode from the draw's random
80 % of the entropy pool; 'entpool' = random subsets of the entropy pool. Prints the test-set MAE and the mean
energy of each set minus the test set's (eV/atom), to compare with the benchmark's results.md rows.
Usage: python benches/entropy_sets.py BENCHMARK_FOLDER SYSTEM [--sizes 100 400] [--draws 2]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dael.benchmark import DRAW_SHARE, epochs_for, holdout_indices
from dael.campaign import preset
from dael.dataset import Dataset
from dael.entropy import GlobalEntropy
from dael.fingerprint import fingerprint
from dael.train import TrainSettings, evaluate, train


def per_atom(structures: list) -> np.ndarray:
    return np.array([a.get_potential_energy() / len(a) for a in structures])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("system")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--min-steps", type=int, default=2000)
    args = parser.parse_args()
    campaign = preset(args.system)
    db = Dataset(args.folder / "labels.db")
    data = {n: list(db.structures(status="labeled", sources=[n])) for n in ("entropy", "random", "test")}
    hold = holdout_indices(data, campaign.seed)
    rest = np.setdiff1d(np.arange(len(data["entropy"])), hold["entropy"])
    fps = fingerprint(data["entropy"], cutoff=campaign.filter.cutoff, natx=None)
    sets = {}
    for d in range(args.draws):
        draw_rng = np.random.default_rng(campaign.seed + 1000 + d)
        sub = np.sort(draw_rng.choice(rest, size=int(DRAW_SHARE * len(rest)), replace=False))
        state = GlobalEntropy("config", campaign.filter.eps, fps.settings)
        picks, _ = state.greedy([fps.of(int(i)) for i in sub], max(args.sizes), min_gain=-np.inf)
        sets[("config", d)] = [int(sub[i]) for i in picks]
        sets[("entpool", d)] = [int(i) for i in draw_rng.permutation(rest)[: max(args.sizes)]]
    test_mean = per_atom(data["test"]).mean()

    def one(job: tuple) -> tuple:
        kind, n, d = job
        out = args.folder / "entropy-sets" / f"{kind}-N{n}-d{d}"
        done = out / "evaluation.json"
        members = [data["entropy"][i] for i in sets[(kind, d)][:n]]
        if not done.exists():
            settings = TrainSettings(epochs=args.epochs, seed=campaign.seed, **campaign.train.settings)
            settings.epochs = epochs_for(n, settings, args.epochs, args.min_steps)
            train(members, out, settings=settings, progress=None, overwrite=True)
            done.write_text(json.dumps(evaluate(out, data["test"])))
        return job, json.loads(done.read_text()), per_atom(members).mean() - test_mean

    jobs = [(kind, n, d) for d in range(args.draws) for n in args.sizes for kind in ("config", "entpool")]
    with ThreadPoolExecutor(2) as pool:  # two single-thread trainings at a time
        results = list(pool.map(one, jobs))
    print("| set | N | test energy MAE (meV/atom) | force MAE (meV/Å) | mean E − test mean (eV/atom) |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("config", "entpool"):
        for n in args.sizes:
            rs = [r for (k, size, _), r, _ in results if (k, size) == (kind, n)]
            shift = np.mean([s for (k, size, _), _, s in results if (k, size) == (kind, n)])
            print(f"| {kind} | {n} | {np.mean([r['energy_mae'] for r in rs]):.1f} | "
                  f"{np.mean([r['force_mae'] for r in rs]):.1f} | {shift:+.3f} |")


if __name__ == "__main__":
    main()
