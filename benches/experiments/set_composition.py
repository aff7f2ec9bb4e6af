"""What each trained model of a benchmark folder was trained on, and its test error per condition: the structures
of models/*/data/{train,val}.extxyz matched to the folder's pools by content hash, counted by pool and
(phase, pressure, temperature) or anchor kind, beside the model's energy MAE on that condition's test structures.

    python benches/experiments/set_composition.py BENCHMARK_FOLDER [--size 100] [--temperature 1000]

Prints one markdown table per strategy (experiments.md section 31 (ii): where mixed loses the 1000 K test
structures). A cell reads "snapshots in the set / test energy MAE (meV/atom)".
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from ase.io import read

from dael.benchmark.evaluation import condition_name
from dael.benchmark.report import CONDITION, pool_rank
from dael.data.dataset import structure_hash

POOLS = ("entropy", "random", "anchor")
MD_POOLS = ("entropy", "random")


def pool_index(folder: Path) -> dict[str, tuple[str, dict]]:
    """{content hash: (pool, info)} of the folder's entropy, random-MD and anchor pools."""
    return {structure_hash(a): (name, a.info) for name in POOLS
            for a in read(folder / "pools" / f"{name}.extxyz", ":")}


def composition(model: Path, index: dict[str, tuple[str, dict]]) -> Counter:
    """Counts of a model's training and validation structures by (pool, the test condition an MD snapshot's
    info names, as the benchmark's per-condition sets do) and (pool, kind) for anchors; ('unknown', None) for
    ones in no pool."""
    counts: Counter = Counter()
    for part in ("train", "val"):
        for atoms in read(model / "data" / f"{part}.extxyz", ":"):
            pool, info = index.get(structure_hash(atoms), ("unknown", None))
            what = None if info is None else info.get("kind") if pool == "anchor" else condition_name(info)
            counts[(pool, what)] += 1
    return counts


def condition_errors(model: Path) -> dict[str, float]:
    """{per-condition test set: energy MAE (meV/atom)} of the model (its evaluation.json)."""
    return {key: value["energy_mae"] for key, value in json.loads((model / "evaluation.json").read_text()).items()
            if key.startswith(CONDITION)}


def models_of(folder: Path, size: int) -> list[Path]:
    """The folder's models of N = `size` (models/STRATEGY-N{size}-dDRAW), strategies in the report's order."""
    return sorted(Path(folder).glob(f"models/*-N{size}-d*"), key=lambda m: (pool_rank(m.name.rsplit("-", 2)[0]),
                                                                            m.name))


def tables(folder: Path, size: int, temperature: int) -> str:
    """Per strategy a table: rows = draws, columns = the test conditions at `temperature`."""
    index = pool_index(folder)
    models = models_of(folder, size)
    suffix = f" {temperature} K"
    grid = {condition_name(info): (info["phase"], float(info["pressure_GPa"]))  # columns in pressure order
            for pool, info in index.values() if pool in MD_POOLS}
    lines = []
    for strategy in dict.fromkeys(m.name.rsplit("-", 2)[0] for m in models):
        mine = [m for m in models if m.name.rsplit("-", 2)[0] == strategy]
        errors = {m: condition_errors(m) for m in mine}
        conditions = sorted({c for e in errors.values() for c in e if c.endswith(suffix)},
                            key=lambda c: (grid.get(c, (c, 0.0)), c))
        lines += [f"{strategy}, N = {size}, {temperature} K: MD snapshots of the condition in the set / test energy "
                  "MAE (meV/atom)",
                  "| draw | " + " | ".join(c.removeprefix(CONDITION).removesuffix(suffix) for c in conditions)
                  + " | anchors by kind |", "|---|" + "---:|" * len(conditions) + "---|"]
        for m in mine:
            counts = composition(m, index)
            kinds = {what: n for (pool, what), n in sorted(counts.items(), key=str) if pool == "anchor"}
            cells = [f"{sum(counts[(pool, c)] for pool in MD_POOLS)} / {errors[m][c]:.2f}" for c in conditions]
            lines.append(f"| {m.name.rsplit('-d', 1)[1]} | " + " | ".join(cells) + " | "
                         + ", ".join(f"{k} {v}" for k, v in kinds.items()) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--temperature", type=int, default=1000)
    args = parser.parse_args()
    print(tables(args.folder, args.size, args.temperature))


if __name__ == "__main__":
    main()
