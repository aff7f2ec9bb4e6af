"""The active-learning loop of a campaign folder: explore → filter → label → train, round after round.

Folder layout (everything a run used sits beside what it made):

    campaign.yaml, seeds.extxyz      the configuration and the seed phases (`dael init`)
    dataset.db                       every structure sent to the oracle, with its labels and status
    rounds/round-NN/explore/         the round's trajectories and snapshots (resumable, see dael.explore.explorer)
    rounds/round-NN/selected.extxyz  the structures chosen for labelling; state.npz: the entropy state of
                                     the dataset with them (a record: each round starts from the state of
                                     the labelled rows, `current_state`); done-*: the stages finished
    models/round-NN/                 the model trained on all labels so far (dael.train.training)
    log.jsonl                        one line per finished stage

Round 1 is driven by `driver` (a foundation model, `base`: the distilled base of train.base — the paper's regime,
exploring with the model being fine-tuned — or the reference oracle); round r > 1 by the model of round r − 1. Each
round explores the grid in a seeded random order; every snapshot inside the energy window whose gain ΔH over the
dataset as it is then exceeds `filter.min_gain` joins the dataset state at once (streaming acceptance, judged per
atom or per configuration by the dual mode), and exploration stops once the round's budget (at most
`budget.per_round`, never beyond `budget.total`) is accepted: the round labels exactly the first snapshots the
filter took (`filter.selection: greedy` re-ranks them by greedy ΔH instead), with `anchor_fraction` of the budget
drawn from near-equilibrium anchors (made by round 1's driver in every round: a barely trained model can collapse
a cell it relaxes; none already in the dataset), and fine-tunes the previous model on everything labelled.
Killed at any point, `dael run` resumes at the first unfinished stage; nothing labelled is lost.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.io import write

from dael.campaign.config import CONFIG, Campaign
from dael.campaign.folder import load
from dael.campaign.preflight import preflight
from dael.data.dataset import Dataset, oracle_spec, structure_hash
from dael.data.structures import read_structures
from dael.explore.explorer import Explorer, anchors, grid
from dael.label.labelling import label_dataset, label_options
from dael.numeric.dual import DualEntropy, new_state
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import FingerprintSettings, fingerprint
from dael.numeric.natx import run_settings
from dael.selection.greedy import select
from dael.selection.screen import chunks, fingerprint_chunk
from dael.train import TrainSettings, train
from dael.train.training import model_versions
from dael.util.checks import natx_value
from dael.util.files import mark, marked

Say = Callable[[str], None]


@dataclass
class Paths:
    root: Path

    @property
    def dataset(self) -> Path:
        return self.root / "dataset.db"

    def round(self, r: int) -> Path:
        return self.root / "rounds" / f"round-{r:02d}"

    def model(self, r: int) -> Path:
        return self.root / "models" / f"round-{r:02d}"

    def done(self, r: int, stage: str) -> Path:
        return self.round(r) / f"done-{stage}"


def fingerprint_settings(campaign: Campaign, seeds: dict) -> FingerprintSettings:
    """The campaign's fingerprint settings; natx 'auto' → NATX_MARGIN × the largest sphere of the seeds compressed
    to the grid's highest pressure (fixed for the run)."""
    f = campaign.filter
    return run_settings(list(seeds.values()), f.cutoff, natx_value(f.natx), "s",
                        max(campaign.explore.pressures, default=0.0))


def current_state(paths: Paths, campaign: Campaign, settings: FingerprintSettings) -> GlobalEntropy:
    """The entropy state of the dataset's labelled rows (all but the test ones), fingerprinted with `settings`:
    the state follows the labels, so a pick whose labelling failed never counts (empty before any label)."""
    state = new_state(campaign.filter.mode, campaign.filter.eps, settings)
    if paths.dataset.exists():
        for block in chunks(Dataset(paths.dataset).labelled(), 500):  # bounded memory
            state.add(fingerprint_chunk(block, settings))
    return state


def log_stage(paths: Paths, r: int, stage: str, entry: dict) -> None:
    entry = {"round": r, "stage": stage, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **entry}
    with open(paths.root / "log.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
    mark(paths.done(r, stage), entry)


def run(folder: str | os.PathLike, say: Say = print, max_rounds: int | None = None) -> dict:
    """Run (or resume) the campaign in `folder` until its budget is spent; returns `status(folder)`."""
    campaign, seeds = load(folder)
    paths = Paths(Path(folder))
    first_driver = preflight(campaign, str(paths.root / CONFIG), _base(campaign, paths),
                             f"train.base {campaign.train.base!r}").driver
    settings = fingerprint_settings(campaign, seeds)
    dataset = Dataset(paths.dataset)
    r = 0
    while max_rounds is None or r < max_rounds:
        # a round takes at most per_round of what its exploration accepted, so rounds go on until the
        # budget is spent (or a round finds nothing new); a round begun before a kill is always finished
        r += 1
        used = len(dataset)
        selected = marked(paths.done(r, "select"))
        if used >= campaign.budget.total and selected is None:
            break
        paths.round(r).mkdir(parents=True, exist_ok=True)
        driver = first_driver if r == 1 else f"allegro:{paths.model(r - 1)}"  # round 1: what preflight checked
        if selected is None:
            explore_round(campaign, seeds, paths, r, driver, first_driver, dataset, settings, used, say)
            selected = marked(paths.done(r, "select"))
        if selected["selected"] == 0:
            say(f"round {r}: nothing new worth labelling; stopping")
            break
        if marked(paths.done(r, "label")) is None:
            label_round(campaign, paths, r, dataset, settings, say)
        if marked(paths.done(r, "train")) is None:
            train_round(campaign, paths, r, dataset, say)
    return status(folder)


def _base(campaign: Campaign, paths: Paths) -> Path | None:
    """train.base (relative to the campaign folder), None when unset."""
    return paths.root / campaign.train.base if campaign.train.base else None


def explore_round(campaign: Campaign, seeds: dict, paths: Paths, r: int, driver: str, anchor_driver: str,
                        dataset, settings: FingerprintSettings, used: int, say: Say) -> None:
    """Explore with `driver` and pick the round's structures; the anchors come from `anchor_driver` (round 1's),
    none already in `dataset`."""
    e, b, f = campaign.explore, campaign.budget, campaign.filter
    state = current_state(paths, campaign, settings)
    budget = min(b.per_round, b.total - used)
    n_anchor = int(round(b.anchor_fraction * budget))
    jobs = grid(seeds, e.pressures, e.temperatures, e.k_global, e.k_local, e.md(), seed=campaign.seed + 1000 * r,
                bias_scale=e.bias_scale, order=e.order)
    say(f"round {r}: exploring {len(jobs)} trajectories with driver {driver}")
    streaming = f.selection == "stream"
    explorer = Explorer(driver, state.copy(), paths.round(r) / "explore", f.min_gain, e.workers, window=e.window,
                        stop_after=budget - n_anchor if streaming else None)
    result = explorer.run(jobs, lambda t: say(f"  {t['name']}: {t['status']}, "
                                              f"{t['accepted']}/{t['snapshots']} accepted"))
    accepted = explorer.accepted_in_order()
    picked = []
    if n_anchor and budget > 0:
        known = dataset.hashes()
        pool_anchors = [a for a in anchors(seeds, anchor_driver, e.pressures, seed=campaign.seed + r)
                        if structure_hash(a) not in known]
        if pool_anchors:
            sel = select(pool_anchors, dataset=_greedy_view(state), budget=n_anchor, min_gain=-np.inf)
            picked = [pool_anchors[i] for i in sel.indices]
    rest = max(0, budget - len(picked))
    if accepted and rest:
        if streaming:  # the authors' protocol: the first snapshots the filter took
            picked += accepted[:rest]
        else:  # every accepted snapshot passed the filter when it arrived; re-rank them by greedy ΔH
            sel = select(accepted, dataset=_greedy_view(state), budget=rest, min_gain=-np.inf)
            picked += [accepted[i] for i in sel.indices]
    if picked:
        state.add(fingerprint(picked, cutoff=settings.cutoff, natx=settings.natx, orbital=settings.orbital))
    write(paths.round(r) / "selected.extxyz", picked, format="extxyz")
    state.save(paths.round(r) / "state.npz")
    log_stage(paths, r, "select", {"driver": driver, "trajectories": len(result.trajectories),
                               "accepted": result.accepted, "selected": len(picked), "logdet": state.logdet})
    say(f"round {r}: {result.accepted} snapshots accepted, {len(picked)} selected for labelling "
        f"(log det {state.logdet:.3f} nats)")


def _greedy_view(state):
    """The state greedy selection ranks against: a dual state's per-atom one."""
    return state.atom if isinstance(state, DualEntropy) else state


def label_round(campaign: Campaign, paths: Paths, r: int, dataset, settings: FingerprintSettings, say: Say) -> None:

    lab = campaign.label
    picked = read_structures(paths.round(r) / "selected.extxyz")
    spec = oracle_spec(lab.oracle, lab.params)
    for source in ("entropy", "anchor"):
        group = [a for a in picked if a.info.get("source", "entropy") == source]
        if group:
            dataset.add(group, oracle=spec, campaign=campaign.name, round=r, source=source, fingerprint=settings)
    # rows of this round written for another oracle (campaign.yaml's label section was corrected since)
    moved = dataset.reassign(spec, ("pending", "failed"), campaign=campaign.name, round=r)
    if moved:
        say(f"round {r}: {moved} rows written for another oracle are now labelled with {spec}")
    summary = label_dataset(dataset, lab.oracle, lab.params, **label_options(lab))
    logdet = current_state(paths, campaign, settings).logdet  # of the labelled rows: failed picks left out
    log_stage(paths, r, "label", {"labeled": summary.labeled, "failed": summary.failed,
                              "seconds": round(summary.seconds, 1), "logdet": logdet})
    say(f"round {r}: labelled {summary.labeled} with {lab.oracle} ({summary.failed} failed) "
        f"in {summary.seconds:.1f} s; log det of the labelled dataset {logdet:.3f} nats")


def train_round(campaign: Campaign, paths: Paths, r: int, dataset, say: Say) -> None:

    labelled = dataset.labelled()
    if len(labelled) < 4:
        raise ValueError(f"round {r}: only {len(labelled)} labelled structures; too few to train a model")
    parent = paths.model(r - 1) if r > 1 and (paths.model(r - 1) / "metrics.json").exists() else None
    if r == 1 and campaign.train.base:  # round 1 fine-tunes the base model (e.g. from `dael distill`)
        parent = _base(campaign, paths)
    settings = TrainSettings(epochs=campaign.train.epochs, seed=campaign.seed, **campaign.train.settings)
    say(f"round {r}: training on {len(labelled)} structures" + (f", warm start from {parent}" if parent else ""))
    result = train(labelled, paths.model(r), parent=parent, settings=settings, progress=None, overwrite=True)
    val = result.metrics["validation"]
    log_stage(paths, r, "train", {"model": str(paths.model(r)), "structures": len(labelled),
                              "validation": {k: v for k, v in val.items() if k.endswith("_mae")}})
    say(f"round {r}: model {paths.model(r)}; validation " +
        ", ".join(f"{k} {v:.2f}" for k, v in val.items() if k.endswith("_mae") and v is not None))


def status(folder: str | os.PathLike) -> dict:
    """Round, budget used, dataset counts, entropy and errors of a campaign folder."""
    campaign, _ = load(folder)
    paths = Paths(Path(folder))
    log = [json.loads(x) for x in (paths.root / "log.jsonl").read_text().splitlines()] \
        if (paths.root / "log.jsonl").exists() else []
    dataset = Dataset(paths.dataset)
    counts = dict(dataset.counts()) if paths.dataset.exists() else {}
    states = [e for e in log if e["stage"] == "label" and "logdet" in e] or \
        [e for e in log if e["stage"] == "select"]
    trains = [e for e in log if e["stage"] == "train"]
    trajectories = [json.loads(x) for f in sorted(paths.root.glob("rounds/round-*/explore/trajectories.jsonl"))
                    for x in f.read_text().splitlines()]
    stopped = [t for t in trajectories if t["status"] != "ok"]
    unbiased = [t for t in trajectories if "unstable_drop" in t]
    return {
        "system": campaign.system,
        "round": max((e["round"] for e in log), default=0),
        "budget": {"total": campaign.budget.total, "used": sum(counts.values())},
        "dataset": counts,
        "logdet": states[-1]["logdet"] if states else None,
        "model": trains[-1]["model"] if trains else None,
        "validation": trains[-1]["validation"] if trains else None,
        "trajectories_stopped": [f"{t['name']}: {t['status']}" for t in stopped],
        "trajectories_unbiased": [f"{t['name']}: quench {t['unstable_drop']:+.3f} eV/atom" for t in unbiased],
        "label_failures": counts.get("failed", 0),
        "versions": {"labels": dataset.versions(), "model": model_versions(trains[-1]["model"]) if trains else None},
    }
