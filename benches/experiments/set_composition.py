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

from dael.benchmark.report import pool_rank
from dael.data.dataset import structure_hash

POOLS = ("entropy", "random", "anchor")


def pool_index(folder: Path) -> dict[str, tuple[str, dict]]:
    """{content hash: (pool, info)} of the folder's entropy, random-MD and anchor pools."""
    return {structure_hash(a): (name, a.info) for name in POOLS
            for a in read(folder / "pools" / f"{name}.extxyz", ":")}


def composition(model: Path, index: dict[str, tuple[str, dict]]) -> Counter:
    """Counts of a model's training and validation structures by (pool, phase, pressure GPa, temperature K) for
    MD snapshots and (pool, phase, pressure GPa, kind) for anchors; ('unknown',) for ones in no pool."""
    counts: Counter = Counter()
    for part in ("train", "val"):
        for atoms in read(model / "data" / f"{part}.extxyz", ":"):
            pool, info = index.get(structure_hash(atoms), ("unknown", None))
            if info is None:
                counts[("unknown",)] += 1
                continue
            last = info.get("kind") if pool == "anchor" else int(info["temperature_K"])
            counts[(pool, info["phase"], float(info["pressure_GPa"]), last)] += 1
    return counts


def condition_errors(model: Path) -> dict[tuple[str, float, int], float]:
    """{(phase, pressure GPa, temperature K): energy MAE (meV/atom)} of the model's per-condition test sets."""
    out = {}
    for key, value in json.loads((model / "evaluation.json").read_text()).items():
        parts = key.removeprefix("test@").split(" ")
        if key.startswith("test@") and len(parts) == 5 and parts[2] == "GPa" and parts[4] == "K":
            out[(parts[0], float(parts[1]), int(float(parts[3])))] = value["energy_mae"]
    return out


def tables(folder: Path, size: int, temperature: int) -> str:
    """Per strategy a table: rows = draws, columns = the test conditions at `temperature`."""
    index = pool_index(folder)
    models = sorted(folder.glob(f"models/*-N{size}-d*"), key=lambda m: (pool_rank(m.name.rsplit("-", 2)[0]), m.name))
    lines = []
    for strategy in dict.fromkeys(m.name.rsplit("-", 2)[0] for m in models):
        mine = [m for m in models if m.name.rsplit("-", 2)[0] == strategy]
        errors = {m: condition_errors(m) for m in mine}
        conditions = sorted({c for e in errors.values() for c in e if c[2] == temperature})
        lines += [f"{strategy}, N = {size}, {temperature} K: MD snapshots of the condition in the set / test energy "
                  "MAE (meV/atom)", "| draw | " + " | ".join(f"{p} {g:g} GPa" for p, g, _ in conditions)
                  + " | anchors by kind |", "|---|" + "---:|" * len(conditions) + "---|"]
        for m in mine:
            counts = composition(m, index)
            md, kinds = Counter(), Counter()
            for k, v in counts.items():
                if k[0] in ("entropy", "random"):
                    md[k[1:]] += v
                elif k[0] == "anchor":
                    kinds[k[3]] += v
            cells = [f"{md[c]} / {errors[m][c]:.2f}" for c in conditions]
            lines.append(f"| {m.name.rsplit('-d', 1)[1]} | " + " | ".join(cells) + " | "
                         + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + " |")
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
