"""The active-learning loop of a campaign folder: explore → filter → label → train, round after round.

Folder layout (everything a run used sits beside what it made):

    campaign.yaml, seeds.extxyz      the configuration and the seed phases (`dael init`)
    dataset.db                       every structure sent to the oracle, with its labels and status
    rounds/round-NN/explore/         the round's trajectories and snapshots (resumable, see dael.explore.explorer)
    rounds/round-NN/selected.extxyz  the structures chosen for labelling; state.npz: the entropy state of
                                     the dataset with them (a record: each round starts from the state of
                                     the labelled rows, `current_state`); done-*: the stages finished
    models/round-NN/                 the model trained on all labels so far (dael.train.training) and, with
                                     model_check on, its check.json (dael.check; the round's stage 'check')
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
from pathlib import Path

import numpy as np
from ase.io import write

from dael.campaign.config import CONFIG, Campaign
from dael.campaign.elements import check_seeds
from dael.campaign.folder import load
from dael.campaign.paths import Paths
from dael.campaign.preflight import preflight
from dael.campaign.round_check import check_round
from dael.campaign.status import spent, status
from dael.data.dataset import Dataset, oracle_spec, structure_hash
from dael.data.structures import read_structures
from dael.explore.anchors import anchors
from dael.explore.conditions import boxed_phases
from dael.explore.explorer import Explorer, grid
from dael.label.labelling import label_dataset, label_options
from dael.numeric.dual import DualEntropy, new_state
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import FingerprintSettings
from dael.numeric.natx import fingerprint_for, run_settings
from dael.selection.greedy import select
from dael.selection.pool import chunks
from dael.train import TrainSettings, train
from dael.train.metrics import load_structures
from dael.util.checks import natx_value
from dael.util.files import mark, marked
from dael.util.lock import locked

Say = Callable[[str], None]


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
            state.add(fingerprint_for(state, block))
    return state


def log_stage(paths: Paths, r: int, stage: str, entry: dict) -> None:
    entry = {"round": r, "stage": stage, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **entry}
    with open(paths.root / "log.jsonl", "a") as log:
        log.write(json.dumps(entry) + "\n")
    mark(paths.done(r, stage), entry)


def run(folder: str | os.PathLike, say: Say = print, max_rounds: int | None = None) -> dict:
    """Run (or resume) the campaign in `folder` until its budget is spent (or `max_rounds` rounds are done);
    returns `status(folder)`. One runner per campaign: a second one raises dael.util.lock.InUse at once."""
    campaign, seeds = load(folder)
    seeds, boxed = boxed_phases(seeds, campaign.explore.vacuum)
    paths = Paths(Path(folder))
    first_driver = preflight(campaign, str(paths.root / CONFIG), _base(campaign, paths),
                             f"train.base {campaign.train.base!r}", seeds=seeds).driver  # reads only: before the lock
    for line in boxed:
        say(line)
    if campaign.evaluate.test:  # the user's test set must load before hours of MD and DFT
        try:
            load_structures(paths.root / campaign.evaluate.test)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{paths.root / CONFIG}: evaluate.test: {exc}") from exc
    with locked(paths.dataset, "dael run"):
        settings = fingerprint_settings(campaign, seeds)
        if marked(paths.done(1, "select")) is None:  # before any MD: driver and oracle take every element
            check_seeds(campaign, seeds, paths, first_driver, str(paths.root / CONFIG), say)
        dataset = Dataset(paths.dataset)
        end, r = f"--rounds {max_rounds} reached", 0
        while max_rounds is None or r < max_rounds:
            # a round takes at most per_round of what its exploration accepted, so rounds go on until the
            # budget is spent (or a round finds nothing new); a round begun before a kill is always finished
            r += 1
            used = spent(dataset)
            selected = marked(paths.done(r, "select"))
            if used >= campaign.budget.total and selected is None:
                end = f"the budget is spent: {used} of {campaign.budget.total} structures sent to the oracle"
                break
            stages = ("label", "train", "check") if campaign.model_check.enabled else ("label", "train")
            if selected is not None and all(marked(paths.done(r, s)) is not None for s in stages):
                say(f"round {r}: finished before ({selected['selected']} structures, model {paths.model(r)})")
                continue
            paths.round(r).mkdir(parents=True, exist_ok=True)
            if selected is None:
                driver, why = round_driver(campaign, paths, r, first_driver)
                explore_round(campaign, seeds, paths, r, (driver, why), first_driver, dataset, settings, used, say)
                selected = marked(paths.done(r, "select"))
            if selected["selected"] == 0:
                end = f"round {r} found nothing new worth labelling ({selected.get('stop', '')})"
                break
            if marked(paths.done(r, "label")) is None:
                label_round(campaign, paths, r, dataset, settings, say)
            if marked(paths.done(r, "train")) is None:
                train_round(campaign, paths, r, dataset, say)
            if campaign.model_check.enabled and marked(paths.done(r, "check")) is None:
                log_stage(paths, r, "check", check_round(campaign, seeds, paths.model(r), say))
            reached = target_reached(campaign, marked(paths.done(r, "train")))
            if reached:
                end = reached
                break
        say(f"campaign: stopped: {end}")
        with open(paths.root / "log.jsonl", "a") as log:
            log.write(json.dumps({"round": r, "stage": "end", "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "reason": end}) + "\n")
    return status(folder)


def round_driver(campaign: Campaign, paths: Paths, r: int, first: str) -> tuple[str, str]:
    """The MD driver of round r and why: round 1's driver (checked by the preflight), or for r > 1 the previous
    round's model when explore.next_driver is 'model' and its validation errors are within explore.model_gate
    (a weak model's MD collapses cells and wastes the budget), else round 1's driver."""
    if r == 1:
        return first, "the campaign's driver"
    if campaign.explore.next_driver == "driver":
        return first, "explore.next_driver: driver"
    done = marked(paths.done(r - 1, "train")) or {}
    errors = done.get("validation") or {}
    over = {k: errors.get(k) for k, limit in campaign.explore.model_gate.items()
            if errors.get(k) is None or not errors[k] <= limit}
    if over:
        shown = ", ".join(f"{k} {'n/a' if v is None else f'{v:.1f}'}" for k, v in over.items())
        return first, (f"round {r - 1}'s model is above explore.model_gate ({shown}; gate "
                       f"{', '.join(f'{k} {v:g}' for k, v in campaign.explore.model_gate.items())})")
    return f"allegro:{paths.model(r - 1)}", f"round {r - 1}'s model (validation within explore.model_gate)"


def _base(campaign: Campaign, paths: Paths) -> Path | None:
    """train.base (relative to the campaign folder), None when unset."""
    return paths.root / campaign.train.base if campaign.train.base else None


def explore_round(campaign: Campaign, seeds: dict, paths: Paths, r: int, driver: tuple[str, str],
                  anchor_driver: str, dataset, settings: FingerprintSettings, used: int, say: Say) -> None:
    """Explore with `driver` (registry name, why it drives) and pick the round's structures; the anchors come
    from `anchor_driver` (round 1's, built with driver_params, as `driver` is when it is the same), none already
    in `dataset`."""
    driver, why = driver
    e, b, f = campaign.explore, campaign.budget, campaign.filter
    state = current_state(paths, campaign, settings)
    budget = min(b.per_round, b.total - used)
    n_anchor = int(round(b.anchor_fraction * budget))
    jobs = grid(seeds, e.pressures, e.temperatures, e.k_global, e.k_local, e.md(), seed=campaign.seed + 1000 * r,
                bias_scale=e.bias_scale, order=e.order)
    streaming = f.selection == "stream"
    goal = f" until {budget - n_anchor} candidates are accepted" if streaming else ""
    say(f"round {r}: exploring up to {len(jobs)} trajectories{goal} with driver {driver} ({why})")
    explorer = Explorer(driver, state.copy(), paths.round(r) / "explore", f.min_gain, e.workers, window=e.window,
                        stop_after=budget - n_anchor if streaming else None,
                        driver_params=campaign.driver_params if driver == anchor_driver else None)
    result = explorer.run(jobs, lambda t: say(f"  {t['name']}: {t['status']}, "
                                              f"{t['accepted']}/{t['snapshots']} accepted"))
    for note in result.notes:
        say(f"round {r}: {note}")
    say(f"round {r}: {result.stop}")
    accepted = explorer.accepted_in_order()
    picked = []
    if n_anchor and budget > 0:
        known = dataset.hashes()
        pool_anchors = [a for a in anchors(seeds, anchor_driver, e.pressures, seed=campaign.seed + r,
                                             driver_params=campaign.driver_params, slab_cell=e.slab_cell)
                        if structure_hash(a) not in known]
        if pool_anchors:  # fingerprinted for the state, which grows when an anchor's sphere outgrows natx
            sel = select(fingerprint_for(state, pool_anchors), dataset=_greedy_view(state), budget=n_anchor,
                         min_gain=-np.inf)
            picked = [pool_anchors[i] for i in sel.indices]
    rest = max(0, budget - len(picked))
    if accepted and rest:
        if streaming:  # the authors' protocol: the first snapshots the filter took
            picked += accepted[:rest]
        else:  # every accepted snapshot passed the filter when it arrived; re-rank them by greedy ΔH
            sel = select(fingerprint_for(state, accepted), dataset=_greedy_view(state), budget=rest,
                         min_gain=-np.inf)
            picked += [accepted[i] for i in sel.indices]
    if picked:
        state.add(fingerprint_for(state, picked))
    write(paths.round(r) / "selected.extxyz", picked, format="extxyz")
    state.save(paths.round(r) / "state.npz")
    log_stage(paths, r, "select", {"driver": driver, "driver_reason": why, "trajectories": len(result.trajectories),
                                   "accepted": result.accepted, "selected": len(picked), "logdet": state.logdet,
                                   "stop": result.stop, "notes": result.notes, "natx": state.settings.natx})
    say(f"round {r}: {result.accepted} snapshots accepted, {len(picked)} selected for labelling "
        f"(log det {state.logdet:.3f} nats)")


def _greedy_view(state):
    """The state greedy selection ranks against: a dual state's per-atom one."""
    return state.atom if isinstance(state, DualEntropy) else state


def label_round(campaign: Campaign, paths: Paths, r: int, dataset, settings: FingerprintSettings, say: Say) -> None:
    """Label the round's selected structures (rows added once; resumable) and log the labelled dataset's H."""
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
    """Train round r's model on every labelled row, fine-tuning round r − 1's (round 1: train.base, if any)."""
    labelled = dataset.labelled()
    if len(labelled) < 4:
        raise ValueError(f"round {r}: only {len(labelled)} labelled structures; too few to train a model")
    parent = paths.model(r - 1) if r > 1 and (paths.model(r - 1) / "metrics.json").exists() else None
    if r == 1 and campaign.train.base:  # round 1 fine-tunes the base model (e.g. from `dael distill`)
        parent = _base(campaign, paths)
    settings = TrainSettings(epochs=campaign.train.epochs, seed=campaign.seed, **campaign.train.settings)
    say(f"round {r}: training on {len(labelled)} structures" + (f", warm start from {parent}" if parent else ""))
    test = paths.root / campaign.evaluate.test if campaign.evaluate.test else None
    result = train(labelled, paths.model(r), parent=parent, settings=settings, test=test, progress=None,
                   overwrite=True)
    errors = {name: {k: v for k, v in result.metrics[name].items() if k.endswith("_mae")}
              for name in ("validation", "test") if name in result.metrics}
    log_stage(paths, r, "train", {"model": str(paths.model(r)), "structures": len(labelled), **errors})
    for name, values in errors.items():
        say(f"round {r}: model {paths.model(r)}; {name} " +
            ", ".join(f"{k} {v:.2f}" for k, v in values.items() if v is not None))


def target_reached(campaign: Campaign, trained: dict | None) -> str | None:
    """Why the campaign stops before its budget (evaluate.stop_at met by the round's test errors), or None."""
    test = (trained or {}).get("test") or {}
    targets = campaign.evaluate.stop_at
    if not targets or not all(test.get(k) is not None and test[k] <= v for k, v in targets.items()):
        return None
    return "evaluate.stop_at reached: " + ", ".join(f"{k} {test[k]:.2f} <= {v:g}" for k, v in targets.items())
