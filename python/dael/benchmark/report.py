"""Learning curves and the HTML report of a benchmark.

Input: one record per trained model and evaluation set — pool (the selection strategy: 'stream', 'mixed',
'random', ...), size N, draw, set ('holdout-entropy', 'holdout-entropy-window', 'holdout-random', 'holdout',
'test', a kind of test structure such as 'test-300K', a condition of it such as 'test@B2 0 GPa 1000 K', or
'md' for MD stability), and the errors energy_mae
(meV/atom), force_mae (meV/Å), stress_mae (meV/Å³) (plus *_rmse; 'md' adds survived, the share of MD steps
completed).
Output: learning-curve PNGs (log-log, mean ± standard deviation over draws), a table as CSV and Markdown,
energy histograms of the pools, tables of the test error per condition at the largest N, and report.html
that shows them with the settings used and the ratio of random MD's error to each strategy's.
"""

from __future__ import annotations

import base64
import csv
import html
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dael.benchmark.strategies import STRATEGIES
from dael.util.files import write_atomic

METRICS = {"energy_mae": "energy MAE (meV/atom)", "force_mae": "force MAE (meV/Å)",
           "stress_mae": "stress MAE (meV/Å³)"}
EXTRA = {"survived": "MD steps survived (share)", "failure_fraction": "own-MD trajectories that failed (share)",
         "median_time_to_failure_ps": "median time to failure of the failed trajectories (ps)"}
ROBUSTNESS = "robustness"
"""The set of the MD-robustness check (dael.benchmark.robustness): tabled, not plotted (it has no errors)."""
CONDITION = "test@"
"""Prefix of the per-condition groups of the test set ('test@B2 0 GPa 1000 K'): tabled at the largest N
(condition_tables), not plotted."""


CONTROLS = ("random", "random-anchored")
"""Training sets without dael's selection: random MD, and random MD with mixed's anchors (what the anchors alone
buy); the verdict compares the best of the others with both."""


def pool_rank(pool: str) -> int:
    """Position of a pool in tables and legends: the order of dael.benchmark.strategies.STRATEGIES, unknown
    names last."""
    order = list(STRATEGIES)
    return order.index(pool) if pool in order else len(order)


def colour(pool: str) -> str | None:
    """A pool's colour in plots (its strategy's; None for a name no strategy has: matplotlib's cycle)."""
    return STRATEGIES[pool].colour if pool in STRATEGIES else None


def summarize(records: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation over draws of every metric, per (set, pool, size)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["set"], r["pool"], int(r["size"]))].append(r)
    rows = []
    for (which, pool, size), rs in sorted(groups.items(), key=lambda g: (g[0][0], pool_rank(g[0][1]), g[0][2])):
        row = {"set": which, "pool": pool, "size": size, "draws": len(rs)}
        for m in (*METRICS, *EXTRA):
            values = np.array([r[m] for r in rs if r.get(m) is not None and np.isfinite(r[m])], dtype=float)
            row[m] = float(values.mean()) if len(values) else float("nan")
            row[m + "_std"] = float(values.std()) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def ratios(rows: Sequence[dict], numerator: str = "random", denominator: str = "stream") -> list[dict]:
    """Per set and size: mean error of `numerator` / mean error of `denominator` for each metric
    (> 1: `denominator` is better)."""
    by = {(r["set"], r["pool"], r["size"]): r for r in rows}
    out = []
    for (which, pool, size), r in by.items():
        other = by.get((which, numerator, size))
        if pool != denominator or other is None:
            continue
        ratio = {m: other[m] / r[m] if r[m] else float("nan") for m in METRICS}
        out.append({"set": which, "size": size, "pool": denominator, **ratio})
    return sorted(out, key=lambda r: (r["set"], r["size"]))


def write_tables(rows: Sequence[dict], folder: Path, appendix: str = "") -> tuple[Path, Path]:
    """results.csv and results.md (`appendix`, a markdown block, at the end of results.md)."""
    columns = ["set", "pool", "size", "draws"] + [c for m in METRICS for c in (m, m + "_std")]
    csv_path, md_path = folder / "results.csv", folder / "results.md"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        for r in rows:
            w.writerow({c: r[c] for c in columns})
    md_path.write_text(markdown_table(_without_conditions(rows)) + "".join(f"\n{t}" for t in condition_tables(rows))
                       + (f"\n{appendix}" if appendix else ""))
    return csv_path, md_path


def markdown_table(rows: Sequence[dict]) -> str:
    head = "| set | pool | N | draws | " + " | ".join(METRICS.values()) + " |\n"
    head += "|---|---|---:|---:|" + "---:|" * len(METRICS) + "\n"
    lines = [f"| {r['set']} | {r['pool']} | {r['size']} | {r['draws']} | "
             + " | ".join(f"{r[m]:.2f} ± {r[m + '_std']:.2f}" for m in METRICS) + " |" for r in rows]
    return head + "\n".join(lines) + "\n"


def _without_conditions(rows: Sequence[dict]) -> list[dict]:
    return [r for r in rows if not r["set"].startswith(CONDITION)]


RESOLUTION = 0.005  # the tables' last digit: errors both below it are ties at zero, not a ratio


def condition_tables(rows: Sequence[dict], metrics: Sequence[str] = ("energy_mae", "force_mae")) -> list[str]:
    """Markdown tables of the test error per condition (phase, pressure, temperature or strains) at the
    largest N where random MD and another strategy were trained, one per metric: where on the grid each
    training set errs, with random MD's error over the best other strategy's (> 1: that one is better)."""
    sel = [r for r in rows if r["set"].startswith(CONDITION)]
    sizes = [n for n in sorted({r["size"] for r in sel}) if {r["pool"] for r in sel if r["size"] == n} > {"random"}]
    if not sizes:
        return []
    at = {(r["set"], r["pool"]): r for r in sel if r["size"] == sizes[-1]}
    pools = sorted({p for _, p in at}, key=pool_rank)
    others = [p for p in pools if p != "random"]
    tables = []
    for m in metrics:
        lines = [f"Test {METRICS[m]} by condition, N = {sizes[-1]}:", "",
                 "| condition | " + " | ".join(pools) + " | random / best other |",
                 "|---|" + "---:|" * (len(pools) + 1)]
        for which in sorted({s for s, _ in at}):
            values = {p: at[(which, p)][m] for p in pools if (which, p) in at}
            best = min((values[p] for p in others if p in values), default=float("nan"))
            random = values.get("random", float("nan"))
            resolved = max(random, best) >= RESOLUTION  # both 0.00 (e.g. forces zero by symmetry): no ratio
            lines.append(f"| {which.removeprefix(CONDITION)} | "
                         + " | ".join(f"{values[p]:.2f}" if p in values else "–" for p in pools)
                         + (f" | {random / best:.2f} |" if resolved and best else " | – |"))
        tables.append("\n".join(lines) + "\n")
    return tables


def plot(rows: Sequence[dict], which: str, title: str, path: Path) -> Path:
    """One PNG with a log-log learning curve per metric for evaluation set `which`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6), constrained_layout=True)
    pools = sorted({r["pool"] for r in rows}, key=pool_rank)
    for ax, (m, label) in zip(axes, METRICS.items(), strict=True):
        for pool in pools:
            sel = [r for r in rows if (r["set"], r["pool"]) == (which, pool) and r[m] > 0]
            sel.sort(key=lambda r: r["size"])
            if not sel:
                continue
            x = [r["size"] for r in sel]
            ax.errorbar(x, [r[m] for r in sel], yerr=[r[m + "_std"] for r in sel], marker="o", capsize=3,
                        color=colour(pool), label=pool)
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted({r["size"] for r in rows})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training structures N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:  # a set no strategy has a positive error on has no curves
        axes[0].legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def verdict(rows: Sequence[dict], metric: str = "energy_mae") -> list[str]:
    """One plain sentence per evaluation set: at the largest N where random MD and at least one other strategy
    were trained, which one has the lowest mean error, how random MD compares and, where it was trained, how
    random MD with the same anchors compares with the best entropy-driven set."""
    lines = []
    for which in sorted({r["set"] for r in _without_conditions(rows)}):
        sel = [r for r in rows if r["set"] == which and np.isfinite(r[metric])]
        sizes = [n for n in sorted({r["size"] for r in sel})
                 if {r["pool"] for r in sel if r["size"] == n} > {"random"}]
        if not sizes:
            continue
        at = {r["pool"]: r[metric] for r in sel if r["size"] == sizes[-1]}
        best = min(at, key=at.get)
        selections = [p for p in at if p not in CONTROLS]
        chosen = min(selections, key=at.get) if selections else None
        line = f"{which}, N = {sizes[-1]}: {best} is best ({at[best]:.2f})"
        if "random" in at and best != "random":
            line += f"; random MD {at['random']:.2f} ({at['random'] / at[best]:.2f}× the error)"
        elif "random" in at and chosen:
            line += f"; the best selection, {chosen}, has {at[chosen] / at['random']:.2f}× random MD's error"
        if "random-anchored" in at and chosen:
            line += (f"; random MD with the same anchors (random-anchored) {at['random-anchored']:.2f}"
                     f" ({at['random-anchored'] / at[chosen]:.2f}× {chosen}'s error)")
        lines.append(line + ".")
    return lines


def energy_histogram(groups: dict[str, Sequence], path: Path) -> Path:
    """Histogram of the labelled energy per atom (eV/atom) of each group of structures, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    energies = {name: np.array([a.get_potential_energy() / len(a) for a in group if a.calc is not None])
                for name, group in groups.items()}
    values = np.concatenate([v for v in energies.values() if len(v)])
    bins = np.linspace(values.min(), values.max(), 60)
    fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    for name, v in energies.items():
        ax.hist(v, bins=bins, histtype="step", density=True, linewidth=1.5, label=f"{name} ({len(v)})")
    ax.set_xlabel("oracle energy (eV/atom)")
    ax.set_ylabel("density")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}" style="max-width:100%">'


def write_report(records: Sequence[dict], folder: str | os.PathLike, title: str, settings: dict,
                 notes: Sequence[str] = (), energies: dict[str, Sequence] | None = None) -> Path:
    """Write results.csv, results.md, curves-<set>.png (energies-hist.png when `energies` maps names to
    labelled structures) and report.html into `folder`; returns the HTML."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarize(records)
    everything = [r for r in summary if r["set"] != ROBUSTNESS]  # errors; robustness has its own table
    write_tables(everything, folder, robustness_markdown(summary))
    rows = _without_conditions(everything)
    sets = sorted({r["set"] for r in rows})
    images = [plot(rows, s, f"{title}: {s} set", folder / f"curves-{s}.png") for s in sets]
    if energies:
        images.append(energy_histogram(energies, folder / "energies-hist.png"))
    pools = sorted({r["pool"] for r in rows} - {"random"}, key=pool_rank)
    ratio_rows = [r for p in pools for r in ratios(rows, "random", p)]
    ratio_html = "".join(
        f"<tr><td>{r['set']}</td><td>{r['pool']}</td><td>{r['size']}</td>"
        + "".join(f"<td>{r[m]:.2f}×</td>" for m in METRICS) + "</tr>" for r in ratio_rows)
    survived = [r for r in rows if r["set"] == "md"]
    survived_html = "".join(f"<tr><td>{r['pool']}</td><td>{r['size']}</td><td>{r['survived']:.2f}</td>"
                            f"<td>{r['energy_mae']:.2f}</td></tr>" for r in survived)
    robust_html = robustness_html(summary)
    table_html = "".join(
        f"<tr><td>{r['set']}</td><td>{r['pool']}</td><td>{r['size']}</td><td>{r['draws']}</td>"
        + "".join(f"<td>{r[m]:.2f} ± {r[m + '_std']:.2f}</td>" for m in METRICS) + "</tr>" for r in rows)
    heads = "".join(f"<th>{html.escape(v)}</th>" for v in METRICS.values())
    settings_html = "".join(f"<tr><td>{html.escape(str(k))}</td><td><code>{html.escape(str(v))}</code>"
                            "</td></tr>" for k, v in settings.items())
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    conditions_html = "".join(f"<pre>{html.escape(t)}</pre>" for t in condition_tables(everything))
    verdict_html = "".join(f"<li>{html.escape(line)}</li>" for line in verdict(rows))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1><ul>{notes_html}</ul>
<h2>Which training set wins (energy MAE, meV/atom; MD: energy error along the model's own MD)</h2>
<ul>{verdict_html}</ul>
<h2>Learning curves</h2>{''.join(_image(p) for p in images)}
<h2>Random-MD error / strategy error (mean over draws; &gt; 1: the strategy is better)</h2>
<table><tr><th>set</th><th>strategy</th><th>N</th>{heads}</tr>{ratio_html}</table>
<h2>Where on the grid the test error lives</h2>{conditions_html}
<h2>MD stability (64-atom cells, hottest temperature, highest pressure)</h2>
<table><tr><th>strategy</th><th>N</th><th>steps survived (share)</th><th>energy MAE vs oracle along MD
(meV/atom)</th></tr>{survived_html}</table>
{robust_html}
<h2>All results (mean ± standard deviation over draws)</h2>
<table><tr><th>set</th><th>pool</th><th>N</th><th>draws</th>{heads}</tr>{table_html}</table>
<h2>Settings</h2><table>{settings_html}</table></body></html>"""
    out = folder / "report.html"
    write_atomic(out, page)
    return out


ROBUSTNESS_TITLE = ("MD robustness (the model's own MD, 64-atom cells, the hottest temperature at the highest "
                    "pressure and one step beyond; dael check)")
ROBUSTNESS_HEADS = ("strategy", "N", "draws", "trajectories that failed (share)",
                    "median time to failure (ps; – none failed)")


def robustness_rows(rows: Sequence[dict]) -> list[list[str]]:
    """The cells of the MD-robustness table per strategy and N (mean ± standard deviation over draws)."""

    def cell(value: float, std: float) -> str:
        return "–" if not np.isfinite(value) else f"{value:.2f} ± {std:.2f}"

    return [[r["pool"], f"{r['size']:g}", str(r["draws"]), cell(r["failure_fraction"], r["failure_fraction_std"]),
             cell(r["median_time_to_failure_ps"], r["median_time_to_failure_ps_std"])]
            for r in rows if r["set"] == ROBUSTNESS]


def robustness_html(rows: Sequence[dict]) -> str:
    """The report's table of the MD-robustness check ('' when no model ran it)."""
    if not (body := robustness_rows(rows)):
        return ""
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in ROBUSTNESS_HEADS)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<h2>{html.escape(ROBUSTNESS_TITLE)}</h2><table><tr>{heads}</tr>{cells}</table>"


def robustness_markdown(rows: Sequence[dict]) -> str:
    """results.md's table of the MD-robustness check ('' when no model ran it)."""
    if not (body := robustness_rows(rows)):
        return ""
    lines = [f"{ROBUSTNESS_TITLE}:", "", "| " + " | ".join(ROBUSTNESS_HEADS) + " |",
             "|---|---:|---:|---:|---:|", *("| " + " | ".join(row) + " |" for row in body)]
    return "\n".join(lines) + "\n"


def records_from_csv(path: str | os.PathLike) -> list[dict]:
    """Read per-model records written by the benchmark (records.csv)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [{k: (v if k in ("pool", "set") else float(v) if v not in ("", None) else None) for k, v in r.items()}
            for r in rows]

