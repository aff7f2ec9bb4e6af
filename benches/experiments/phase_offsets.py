"""Per-phase signed energy error of benchmark models on the test set: does a model's error come from an offset
between phases (a floor no amount of data removes) or from scatter?

Usage: python benches/experiments/phase_offsets.py CAMPAIGN_FOLDER BENCHMARK_FOLDER MODEL_FOLDER [...]
Prints, per model, the test-set energy MAE, the mean and spread of the signed error (model − oracle) and its
mean per phase, all in meV/atom.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase.io import read

from dael.benchmark.pools import label_pools
from dael.calculators.deploy import load_calculator, with_calculator
from dael.campaign.folder import load
from dael.train.metrics import load_structures, reference_results


def main() -> None:
    campaign, _ = load(sys.argv[1])
    folder = Path(sys.argv[2])
    pool = read(folder / "pools" / "test.extxyz", ":")
    labelled = label_pools(campaign, {"test": pool}, folder, say=lambda line: None)["test"]
    phases = np.array([str(a.info.get("phase")) for a in labelled])
    test = load_structures(labelled)
    reference = np.array([reference_results(a)[0] / len(a) for a in test])
    for model in sys.argv[3:]:
        calc = load_calculator(model)
        predicted = np.array([with_calculator(a, calc).get_potential_energy() / len(a) for a in test])
        err = 1000 * (predicted - reference)
        per_phase = ", ".join(f"{p} {err[phases == p].mean():+.1f}" for p in sorted(set(phases)))
        print(f"{model}: MAE {np.abs(err).mean():.1f}, mean {err.mean():+.1f}, std {err.std():.1f}; {per_phase}")


if __name__ == "__main__":
    main()
