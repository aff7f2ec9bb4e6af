"""One benchmark size as grouped bars: per evaluation set, each strategy's error (mean ± standard error over
draws), log scale; for a run with one N, where learning curves are single points.

    python benches/experiments/strategy_bars.py BENCHMARK_FOLDER OUT.png --size 50
        [--sets test,indtest,test-strain,holdout-entropy-accepted] [--strategies mixed,stream-fill,...]
        [--metric energy_mae] [--title "Si, GPAW PBE"]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from decision import table  # noqa: E402  (benches/experiments, beside this script)

from dael.benchmark.run import folder_records  # noqa: E402

SET_NAMES = {"test": "test", "indtest": "broad indtest", "test-strain": "strain probes",
             "test-equilibrium": "equilibrium probes", "holdout-entropy-accepted": "own holdout\n(accepted)",
             "holdout-random": "random-MD holdout", "md": "own MD", "test-2000K": "thermal MD,\n2000 K",
             "test-300K": "thermal MD,\n300 K", "test-1000K": "thermal MD,\n1000 K"}
UNITS = {"energy_mae": "energy MAE (meV/atom)", "force_mae": "force MAE (meV/Å)", "stress_mae": "stress MAE (meV/Å³)"}


def bars(records: list[dict], size: int, sets: list[str], strategies: list[str], metric: str
         ) -> dict[tuple[str, str], tuple[float, float, int]]:
    """{(set, strategy): (mean, standard error, draws)} of `metric` at `size` (decision.table's; one draw: no
    whisker)."""
    t = table(records)
    out = {}
    for s in sets:
        for p in strategies:
            if metric in t.get((s, p, size), {}):
                mean, se, n = t[(s, p, size)][metric]
                out[(s, p)] = (mean, se if n > 1 else 0.0, n)
    return out


def plot(values: dict, sets: list[str], strategies: list[str], metric: str, title: str, out: Path) -> None:
    """Grouped bars with standard-error whiskers, one group per set that has any."""
    sets = [s for s in sets if any((s, p) in values for p in strategies)]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(sets), 3.6))
    width = 0.8 / len(strategies)
    for k, p in enumerate(strategies):
        x = [i + (k - (len(strategies) - 1) / 2) * width for i, s in enumerate(sets) if (s, p) in values]
        y = [values[(s, p)][0] for s in sets if (s, p) in values]
        e = [values[(s, p)][1] for s in sets if (s, p) in values]
        ax.bar(x, y, width, yerr=e, capsize=2, label=p)
    ax.set_xticks(range(len(sets)), [SET_NAMES.get(s, s) for s in sets], fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel(UNITS.get(metric, metric))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--sets", default="test,indtest,test-strain,holdout-entropy-accepted")
    parser.add_argument("--strategies", default="mixed,stream-fill,random-anchored,random")
    parser.add_argument("--metric", default="energy_mae")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    sets, strategies = args.sets.split(","), args.strategies.split(",")
    values = bars(folder_records(args.folder), args.size, sets, strategies, args.metric)
    if not values:
        raise SystemExit(f"{args.folder}: no evaluated model of size {args.size} on {args.sets}")
    plot(values, sets, strategies, args.metric, args.title or f"{args.folder.name}, N = {args.size}", args.out)
    for (s, p), (m, e, n) in values.items():
        print(f"{s}\t{p}\t{m:.2f} ± {e:.2f} ({n} draws)")


if __name__ == "__main__":
    main()
