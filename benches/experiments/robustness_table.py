"""The MD-robustness runs of a benchmark folder's models (benchmark.robustness_sizes), pooled per strategy and N:
trajectories that failed of all, by failure kind, by phase and condition, and the times to failure.

    python benches/experiments/robustness_table.py BENCHMARK_FOLDER

Reads models/*/evaluation.json (its "robustness" runs); prints markdown. The report's table gives the mean
and spread over draws; this one pools the draws' trajectories and says where and how they failed.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from dael.benchmark.report import pool_rank


def pooled(folder: Path) -> dict[tuple[str, int], list[dict]]:
    """{(strategy, N): every robustness run of its models} from folder/models/STRATEGY-NN-dD/evaluation.json."""
    runs: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for path in sorted(folder.glob("models/*/evaluation.json")):
        result = json.loads(path.read_text()).get("robustness")
        if result:
            strategy, size, _ = path.parent.name.rsplit("-", 2)
            runs[(strategy, int(size.removeprefix("N")))] += result["runs"]
    return runs


def table(runs: dict[tuple[str, int], list[dict]]) -> str:
    """One markdown row per strategy and N."""
    conditions = sorted({(r["phase"], r["pressure_GPa"], r["temperature_K"]) for rs in runs.values() for r in rs})
    heads = [f"{phase} {p:g} GPa {t:g} K" for phase, p, t in conditions]
    lines = ["| strategy | N | failed / runs | ps each | " + " | ".join(heads) + " | kinds | times to failure (ps) |",
             "|---|---:|---:|---:|" + "---:|" * len(heads) + "---|---|"]
    for (strategy, n), rs in sorted(runs.items(), key=lambda kv: (kv[0][1], pool_rank(kv[0][0]))):
        failed = [r for r in rs if r["failed"]]
        per = [f"{sum(r['failed'] for r in rs if key(r) == c)}/{sum(key(r) == c for r in rs)}" for c in conditions]
        kinds = ", ".join(f"{k} {v}" for k, v in Counter(r["kind"] for r in failed).most_common()) or "–"
        times = sorted(r["time_to_failure_ps"] for r in failed)
        when = (f"median {np.median(times):.2f} ({', '.join(f'{t:.2f}' for t in times)})" if times else "–")
        ps = sorted({r["ps"] for r in rs})
        lines.append(f"| {strategy} | {n} | {len(failed)}/{len(rs)} | {', '.join(f'{p:g}' for p in ps)} | "
                     + " | ".join(per) + f" | {kinds} | {when} |")
    return "\n".join(lines)


def key(run: dict) -> tuple:
    return run["phase"], run["pressure_GPa"], run["temperature_K"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    runs = pooled(parser.parse_args().folder)
    if not runs:
        raise SystemExit("no model in this folder has robustness runs (benchmark.robustness_sizes)")
    print(table(runs))


if __name__ == "__main__":
    main()
