"""The demo (`dael demo`): a small real campaign on Si with the embedded reference oracle.

Rounds of explore → filter → label → train until its 80 labels are spent, then a small entropy-vs-random
benchmark and its HTML report (about 13 min on 2 cores).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dael.benchmark.run import run_benchmark
from dael.campaign.config import Benchmark, Campaign
from dael.campaign.folder import write
from dael.campaign.loop import run as run_campaign
from dael.campaign.presets import phases, preset
from dael.train.metrics import evaluate
from dael.train.training import still_improving

__all__ = ["demo_campaign", "run_demo"]


def demo_campaign() -> Campaign:
    """The Si preset cut down to minutes: two pressures and temperatures, short MD, 80 labels in rounds of 40,
    dael.train.training's tiny model and a three-size benchmark."""
    campaign = preset("Si")
    campaign.name = "Si-demo"
    # the preset's other exploration settings (its bias strength, window, order) stay as they are
    campaign.explore = replace(campaign.explore, pressures=[0.0, 10.0], temperatures=[600.0, 1500.0], steps=200,
                               snapshots=10, thermalize=50, relax_steps=50)
    campaign.budget = replace(campaign.budget, total=80, per_round=40)  # the preset's anchor share stays
    campaign.train.epochs = 40
    campaign.train.settings = {}  # dael.train.training's tiny model: the demo stays within minutes
    campaign.model_check = replace(campaign.model_check, checks=["md", "eos"], md_ps=0.5, seeds=1)  # seconds
    campaign.benchmark = Benchmark(sizes=[20, 40, 80], draws=2, epochs=40, min_steps=400, repeats=2, snapshots=20,
                                   md_steps=100)
    return campaign


def round_comparison(folder: Path, state: dict) -> str:
    """One line: the last round's model against the first round's on the last round's validation set (the same
    structures for both; meV/atom, meV/Å), and why the last is worse where it is."""
    trained = [r for r in state["rounds"] if r.get("model")]
    if len(trained) < 2:
        return f"demo: {len(trained)} round(s) trained; nothing to compare"
    first, last = Path(trained[0]["model"]), Path(trained[-1]["model"])
    val = last / "data" / "val.extxyz"
    old, new = evaluate(first, val), evaluate(last, val)
    line = (f"demo: on round {trained[-1]['round']}'s validation set ({new['structures']} structures), round "
            f"{trained[-1]['round']}'s model E {new['energy_mae']:.1f} meV/atom, F {new['force_mae']:.0f} meV/Å; round "
            f"{trained[0]['round']}'s E {old['energy_mae']:.1f}, F {old['force_mae']:.0f}")
    if new["energy_mae"] > old["energy_mae"] or new["force_mae"] > old["force_mae"]:
        metrics = json.loads((last / "metrics.json").read_text())
        line += (" — worse there; the last model " + ("stopped at its epoch limit still improving (a larger "
                 "train.epochs trains it further)" if still_improving(metrics) else "had stopped improving "
                 "before its epoch limit"))
    return line


def run_demo(folder: str | os.PathLike, say: Callable[[str], None] = print,
             on_rounds: Callable[[dict], None] | None = None) -> Path:
    """Write the demo campaign into `folder` (replacing one there), run it until its budget is spent, pass the
    campaign's status to `on_rounds`, run the benchmark; returns the report's path."""
    folder = Path(folder)
    campaign = demo_campaign()
    write(folder, campaign, phases("Si"), force=True)
    start = time.perf_counter()
    state = run_campaign(folder, say=say)
    if on_rounds is not None:
        on_rounds(state)
    say(round_comparison(folder, state))
    # mixed is what the campaign labels (anchors + the filter's picks, filled: the filter saturates on a pool this
    # small); random-anchored (the same anchors + random MD) says what the bias and the filter add to the anchors
    report = run_benchmark(campaign, phases("Si"), folder / "benchmark", say=say,
                           strategies=["mixed", "random-anchored", "random"])
    say(f"demo finished in {(time.perf_counter() - start) / 60:.1f} min; report: {report}")
    return report
