"""How far a prior (a base model, before any fine-tuning) is from the oracle on a benchmark folder's labelled
pools: per pool, the energy MAE as is and with the mean per-atom offset removed (a foundation model and a DFT
code need not share an energy zero), and the force MAE.

    python benches/experiments/prior_error.py BENCHMARK_FOLDER MODEL [--pools test anchor random entropy]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dael.benchmark.pools import POOL_SOURCES
from dael.calculators.deploy import load_calculator
from dael.data.dataset import Dataset
from dael.train.metrics import load_structures, structure_errors


def prior_errors(model, structures: list) -> dict[str, float]:
    """Energy MAE (meV/atom) as is and about the mean offset, the offset itself, and the force MAE (meV/Å)."""
    errors = [structure_errors(atoms, model) for atoms in load_structures(structures)]
    de_arr = np.array([e[0] for e in errors])
    return {"structures": len(structures), "energy_mae": 1e3 * float(np.abs(de_arr).mean()),
            "offset": 1e3 * float(de_arr.mean()),
            "energy_mae_shifted": 1e3 * float(np.abs(de_arr - de_arr.mean()).mean()),
            "force_mae": 1e3 * float(np.abs(np.concatenate([e[1] for e in errors])).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--pools", nargs="+", default=["test", "anchor", "random", "entropy"])
    args = parser.parse_args()
    model = load_calculator(args.model)
    db = Dataset(args.folder / "labels.db")
    print("| pool | structures | E MAE (meV/atom) | mean offset | E MAE about the offset | F MAE (meV/Å) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.pools:
        r = prior_errors(model, list(db.structures(sources=[POOL_SOURCES[name]])))
        print(f"| {name} | {r['structures']} | {r['energy_mae']:.1f} | {r['offset']:+.1f} | "
              f"{r['energy_mae_shifted']:.1f} | {r['force_mae']:.0f} |")


if __name__ == "__main__":
    main()
