"""The `dael check` results of a benchmark's models, per strategy: the MD-robustness runs pooled over the draws
(robustness_table.table) and the physics checks (phases, equation of state, phonons) draw by draw.

    python benches/experiments/check_table.py data/si-gpaw/checks-n400/*.json

Each file is one `dael check ... --json` result, named STRATEGY-N{size}-d{draw}-{what}.json (what: md, physics,
or anything); prints markdown.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from robustness_table import table  # benches/experiments, beside this script

from dael.benchmark.report import pool_rank

NAME = re.compile(r"(?P<strategy>.+)-N(?P<size>\d+)-d(?P<draw>\d+)-(?P<what>[^.]+)\.json$")


def results(paths: list[Path]) -> dict[tuple[str, int, int], dict]:
    """{(strategy, N, draw): the merged check results of its files}."""
    out: dict[tuple[str, int, int], dict] = defaultdict(dict)
    for path in paths:
        match = NAME.match(path.name)
        if match is None:
            raise SystemExit(f"{path}: not named STRATEGY-N<size>-d<draw>-<what>.json")
        out[(match["strategy"], int(match["size"]), int(match["draw"]))] |= json.loads(path.read_text())
    return out


def physics(checks: dict[tuple[str, int, int], dict]) -> str:
    """One row per model: phases kept and where one was lost (to which space group), the equation of state, the
    lowest phonon of each phase over the pressures (cm⁻¹)."""
    phased = [k for k in checks if "phases" in checks[k]]
    phases = list(dict.fromkeys(e["phase"] for k in phased for e in checks[k]["phonons"]["phases"]))
    lines = ["| strategy | N | draw | phases kept | lost (phase, GPa → space group) | EOS | "
             + " | ".join(f"lowest phonon, {p} (cm⁻¹)" for p in phases) + " |",
             "|---|---:|---:|---:|---|---|" + "---:|" * len(phases)]
    for strategy, size, draw in sorted(phased, key=lambda k: (k[1], pool_rank(k[0]), k[2])):
        c = checks[(strategy, size, draw)]
        kept = [e["kept"] for e in c["phases"]["phases"]]
        lost = "; ".join(f"{e['phase']} {e['pressure_GPa']:g} → {e['relaxed']}" for e in c["phases"]["phases"]
                         if not e["kept"]) or "–"
        eos = "smooth, one minimum" if c["eos"]["passed"] else "; ".join(
            f"{e['phase']}: {e['reason']}" for e in c["eos"]["phases"] if not e["passed"])
        low = [min(e["lowest_cm1"] for e in c["phonons"]["phases"] if e["phase"] == p) for p in phases]
        lines.append(f"| {strategy} | {size} | {draw} | {sum(kept)}/{len(kept)} | {lost} | {eos} | "
                     + " | ".join(f"{x:.1f}" for x in low) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    checks = results(parser.parse_args().files)
    runs: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for (strategy, size, _), c in checks.items():
        if "md" in c:
            runs[(strategy, size)] += c["md"]["runs"]
    if runs:
        print("MD robustness, the draws' trajectories pooled:\n\n" + table(runs) + "\n")
    if any("phases" in c for c in checks.values()):
        print("Physics checks:\n\n" + physics(checks))


if __name__ == "__main__":
    main()
