"""Learning curves of several `dael benchmark` folders side by side: one column per system, one row per
evaluation set, the energy MAE (or another metric) against N, mean ± standard deviation over draws, log-log.

Usage: python benches/experiments/curves_by_system.py OUT.png Si=si-bench NaCl=nacl-bench C=c-bench
       [--sets test,test-strain,holdout-entropy-accepted,md] [--strategies mixed,random-anchored,random]
       [--metric energy_mae]
Reads every model's evaluation.json under FOLDER/models (dael.benchmark.run.folder_records: all sizes and draws
ever trained there). `Si=bench-a+bench-b` joins folders that hold different sizes on the same evaluation sets
(experiments.md section 31 (ii): N = 50 and N = 100 on one test subset). Also prints, per set and system, a
markdown table of random MD's error over each strategy's at every N (> 1: the strategy's set is better).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dael.benchmark.report import METRICS, colour, pool_rank, ratios, summarize
from dael.benchmark.run import folder_records

TITLES = {"test": "test set", "test-strain": "strain probes", "holdout-entropy-accepted": "own holdout, accepted",
          "md": "the model's own hot MD", "transfer": "transfer (64 atoms, off the grid)",
          "indtest": "broad indtest", "test-2000K": "thermal MD at 2000 K"}


def curves(systems: dict[str, list[dict]], sets: list[str], strategies: list[str], metric: str, out: Path) -> None:
    """One PNG: rows = evaluation sets, columns = systems."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(len(sets), len(systems), figsize=(3.6 * len(systems), 2.9 * len(sets)),
                             constrained_layout=True, squeeze=False)
    for col, (system, rows) in enumerate(systems.items()):
        for row, which in enumerate(sets):
            ax = axes[row][col]
            for pool in sorted(strategies, key=pool_rank):
                sel = sorted((r for r in rows if (r["set"], r["pool"]) == (which, pool) and r[metric] > 0),
                             key=lambda r: r["size"])
                if sel:
                    ax.errorbar([r["size"] for r in sel], [r[metric] for r in sel],
                                yerr=[r[metric + "_std"] for r in sel], marker="o", capsize=3,
                                color=colour(pool), label=pool)
            sizes = sorted({r["size"] for r in rows})
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(sizes, [str(n) for n in sizes])
            ax.xaxis.set_minor_formatter(NullFormatter())
            plain = FuncFormatter(lambda v, _: f"{v:.3g}")
            low, high = ax.get_ylim()
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain if high < 10 * low else NullFormatter())
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{system}: {TITLES.get(which, which)}", fontsize=10)
            if col == 0:
                ax.set_ylabel(METRICS[metric])
            if row == len(sets) - 1:
                ax.set_xlabel("training structures N")
    axes[0][0].legend(fontsize=8)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def ratio_table(systems: dict[str, list[dict]], which: str, strategies: list[str], metric: str) -> str:
    """Markdown: per system and N, random MD's mean error / each strategy's (draws in brackets)."""
    others = [s for s in strategies if s != "random"]
    lines = [f"{which} ({metric}): random MD / strategy",
             "| system | N | " + " | ".join(others) + " | random MD |",
             "|---|---:|" + "---:|" * (len(others) + 1)]
    for system, rows in systems.items():
        mine = [r for r in rows if r["set"] == which]
        ratio = {(r["pool"], r["size"]): r[metric] for s in others for r in ratios(mine, "random", s)}
        draws = {(r["pool"], r["size"]): r["draws"] for r in mine}
        for r in (r for r in mine if r["pool"] == "random"):
            cells = [f"{ratio[(s, r['size'])]:.2f} ({draws[(s, r['size'])]})" if (s, r["size"]) in ratio else "–"
                     for s in others]
            lines.append(f"| {system} | {r['size']} | " + " | ".join(cells) + f" | {r[metric]:.2f} |")
    return "\n".join(lines) + "\n"


def joined(folders: list[list[dict]]) -> list[dict]:
    """The records of several folders as one system's; a size evaluated in two of them is an error (its draws
    would mix two runs)."""
    seen: set[int] = set()
    for records in folders:
        sizes = {int(r["size"]) for r in records}
        if sizes & seen:
            raise SystemExit(f"N = {sorted(sizes & seen)} is in two of the joined folders: join folders of "
                             "different sizes only")
        seen |= sizes
    return [r for records in folders for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("folders", nargs="+", help="SYSTEM=BENCHMARK_FOLDER")
    parser.add_argument("--sets", default="test,test-strain,holdout-entropy-accepted,md")
    parser.add_argument("--strategies", default="mixed,random-anchored,random")
    parser.add_argument("--metric", default="energy_mae", choices=list(METRICS))
    args = parser.parse_args()
    strategies, sets = args.strategies.split(","), args.sets.split(",")
    systems = {}
    for spec in args.folders:
        system, _, folders = spec.partition("=")
        records = joined([folder_records(Path(folder)) for folder in folders.split("+")])
        records = [r for r in records if r["pool"] in strategies]
        systems[system] = [r for r in summarize(records) if np.isfinite(r[args.metric])]
    curves(systems, sets, strategies, args.metric, args.out)
    for which in sets:
        print(ratio_table(systems, which, strategies, args.metric))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
