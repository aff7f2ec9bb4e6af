"""Selection strategies vs random MD: learning curves with the same oracle, pools and training (docs/method.md §6).

Protocol (`run_benchmark`), all in one folder, every stage resumable:

1. Pools, explored by the campaign's driver (`driver: base` with `--from`: the base model, the paper's regime).
   *Entropy*: biased MD (k_g, k_l, bias scale of the campaign's grid) over phases × pressures × temperatures,
   `repeats` seeds each, `snapshots` per trajectory, every snapshot kept (tagged with its trajectory, step and
   energies). *Random*: the same grid and step counts with k = 0 and snapshots at
   uniformly random steps (random MD). *Anchors*: each phase relaxed at each pressure, isotropic strains
   0.95/0.97/1.03/1.05, 300 K MD snapshots. *Test* (independent; MD with `benchmark.test_driver`, by default
   the oracle itself: the surface the potential must reproduce): plain MD at every phase/pressure/temperature
   with other seeds, plus strains 0.92/1.08 of the relaxed phases (not the relaxed cells: those are anchors;
   `overlap` counts test structures that are also in a training pool: 0 for new test sets). *Transfer* (never
   seen, never tuned on): plain MD of 2×2×2 supercells of the phases at pressures and temperatures off the
   grid (the midpoints and 15 % beyond the largest; `off_grid`), other seeds: how a potential carries to other
   cells and conditions; evaluated whole and split into 'transfer-inside' (within the grid's ranges) and
   'transfer-beyond'.
2. Everything is labelled by the campaign's oracle (one database, tagged by source). The oracle's stress on the
   anchors the driver relaxed tells whether driver and oracle agree on each phase's equilibrium
   (`dael.campaign.agreement`); where they do not, the run says so (a warning and a report note).
3. In-distribution holdouts: 10 % of each of the entropy and random pools, set aside before selection; the
   entropy holdout is also evaluated within the energy window ('holdout-entropy-window': the snapshots a
   windowed strategy or a campaign could label) and on the snapshots of it that the streaming filter accepts
   in exploration order ('holdout-entropy-accepted': the paper's holdout, 10 % of its accepted dataset).
4. Training sets per strategy and draw (`dael.benchmark.strategies`; the default `stream` is what `dael run` labels).
5. One model per (strategy, N, draw), trained identically (dael.train.training, from scratch or fine-tuned from the
   `base`, at least `epochs` and at least `min_steps` optimizer steps), run in parallel single-thread
   processes. Each is evaluated on the entropy pool's holdout (whole and within the window), the random
   pool's holdout, their union, the test set and each kind of test structure (thermal MD per temperature,
   strain probes), the transfer set, and by MD stability (`dael.explore.stability`: 64-atom cells at the
   hottest temperature and highest pressure) and, for the sizes in benchmark.robustness_sizes, by the
   MD-robustness check of `dael check` (`dael.benchmark.robustness`: failure fraction and time to failure);
   records.csv, then the report.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.io import read

from dael.benchmark.evaluation import (
    accepted_by_filter,
    broad_indtest,
    by_condition,
    by_test_kind,
    by_transfer_kind,
    in_distribution_holdouts,
    overlap,
)
from dael.benchmark.pools import check_stored, explore_pools, label_pools, pool_fingerprints
from dael.benchmark.report import write_report
from dael.benchmark.robustness import RECORDED, Robustness, robustness_of
from dael.benchmark.robustness import SET as ROBUSTNESS
from dael.benchmark.sets import members, training_sets
from dael.benchmark.strategies import (
    DEFAULT_STRATEGIES,
    check_strategies,
)
from dael.calculators.deploy import load_calculator
from dael.calculators.registry import make_calculator
from dael.campaign.agreement import describe, mismatch
from dael.campaign.config import Campaign
from dael.campaign.loop import fingerprint_settings
from dael.campaign.preflight import Checked, preflight
from dael.data.dataset import structure_hash
from dael.explore.conditions import boxed_phases
from dael.explore.stability import md_stability
from dael.selection.window import in_window
from dael.train.metrics import evaluate_sets
from dael.train.settings import TrainSettings
from dael.train.training import IMPROVING_TAIL, still_improving, train
from dael.util.files import mark, marked
from dael.util.lock import locked

Say = Callable[[str], None]


def model_dir(folder: Path, job: tuple[str, int, int]) -> Path:
    """The model directory of one (strategy, draw, size) job of a benchmark folder."""
    strategy, draw, n = job
    return folder / "models" / f"{strategy}-N{n}-d{draw}"


def job_records(job: tuple[str, int, int], result: dict) -> list[dict]:
    """One record per evaluation set of a model's evaluation.json entry, as records.csv holds them."""
    strategy, d, n = job
    return [{"pool": strategy, "size": n, "draw": d, "set": which,
             **{k: v for k, v in r.items() if k.endswith(("_mae", "_rmse")) or k in ("survived", *RECORDED)}}
            for which, r in result.items()]


def folder_records(folder: Path) -> list[dict]:
    """The records of every evaluated model under folder/models (every size and draw ever trained there;
    records.csv holds only the last call's)."""
    records = []
    for path in sorted(Path(folder).glob("models/*/evaluation.json")):
        name = re.fullmatch(r"(.+)-N(\d+)-d(\d+)", path.parent.name)  # model_dir's name
        if name is not None:
            records += job_records((name[1], int(name[3]), int(name[2])), marked(path) or {})
    return records


def epochs_for(n: int, settings, epochs: int, min_steps: int) -> int:
    """At least `epochs`, and enough that n structures (less the validation share) give `min_steps` optimizer
    steps at the settings' batch size: small training sets are trained as long, not as few times, as large."""
    steps_per_epoch = max(1, int(np.ceil(n * (1 - settings.val_fraction) / settings.batch_size)))
    return max(epochs, int(np.ceil(min_steps / steps_per_epoch)))


@dataclass
class Evaluation:
    """What every model of one benchmark call is trained and evaluated with."""

    folder: Path
    data: dict[str, list]
    sets: dict
    evaluation_sets: dict[str, list[Atoms]]
    train_settings: dict
    parent: Path | None
    starts: list[Atoms]
    judge: Calculator | None  # the oracle checking the model's own MD; None: survival only
    md: bool  # evaluate the model's own MD (needs its MD driver: the model itself)
    robustness: Robustness | None = None  # the MD-robustness check of some sizes' models
    digests: dict[str, str] = field(init=False)  # set_digest of each evaluation set

    def __post_init__(self):
        self.digests = {name: set_digest(structures) for name, structures in self.evaluation_sets.items()}

    def stale(self, result: dict) -> list[str]:
        """The evaluation sets whose stored result in `result` was computed on other structures (a test set
        labelled further since, say); a result stored before digests were kept counts as stale only if its
        structure count differs."""
        return [name for name, digest in self.digests.items() if name in result
                and (result[name].get("set", digest) != digest
                     or result[name].get("structures") != len(self.evaluation_sets[name]))]

    def wanted(self, n: int) -> list[str]:
        """The evaluations of a model trained on n structures."""
        return [*self.evaluation_sets, *["md"] * self.md,
                *[ROBUSTNESS] * bool(self.robustness and self.robustness.wanted(n))]


def set_digest(structures: list[Atoms]) -> str:
    """Content digest of an evaluation set (its structures' content hashes, in any order), 16 hex digits."""
    return hashlib.sha256("".join(sorted(structure_hash(a) for a in structures)).encode()).hexdigest()[:16]


def evaluate_job(campaign: Campaign, ev: Evaluation, job: tuple[str, int, int], say: Say) -> list[dict]:
    """Train the model of one (strategy, draw, N) job unless it exists, evaluate it on every set it has no result
    for yet (a rerun adds new sets, e.g. the model's own MD after a run without the oracle) or whose structures
    changed since (Evaluation.stale); its records. A model whose training finished (trained.json: its training
    set's digest, epochs and parent) but whose evaluation was cut off is evaluated, not trained again."""
    strategy, d, n = job
    bench = campaign.benchmark
    out = model_dir(ev.folder, job)
    done = out / "evaluation.json"
    if not done.exists():
        settings = TrainSettings(**ev.train_settings)
        settings.epochs = epochs_for(n, settings, bench.epochs, bench.min_steps)
        structures = members(ev.sets[job], ev.data)
        trained = {"set": set_digest(structures), "epochs": settings.epochs, "parent": str(ev.parent)}
        if marked(out / "trained.json") != trained:
            (out / "trained.json").unlink(missing_ok=True)
            train(structures, out, parent=ev.parent, settings=settings, progress=None, overwrite=True)
            mark(out / "trained.json", trained)
    result = marked(done) or {}
    if stale := ev.stale(result):
        say(f"benchmark: {strategy} N={n} draw {d}: evaluated again on {', '.join(stale)} (their structures changed)")
    missing = [name for name in ev.wanted(n) if name not in result or name in stale]
    if missing:
        calc = load_calculator(out, device=ev.train_settings.get("device", "cpu"))
        result.update({name: {**errors, "set": ev.digests[name]} for name, errors in evaluate_sets(
            calc, {name: ev.evaluation_sets[name] for name in missing if name in ev.evaluation_sets}).items()})
        if "md" in missing:
            result["md"] = md_stability(calc, ev.starts, ev.judge, max(campaign.explore.temperatures),
                                        bench.md_steps, seed=campaign.seed)
        if ROBUSTNESS in missing:
            result[ROBUSTNESS] = ev.robustness.evaluate(calc)
        mark(done, result)
    md = f"; MD survived {result['md']['survived']:.2f}" if "md" in result else ""
    if ROBUSTNESS in result:
        md += f"; own-MD failures {result[ROBUSTNESS]['failure_fraction']:.2f}"
    say(f"benchmark: {strategy} N={n} draw {d}: test E {result['test']['energy_mae']:.2f} meV/atom, "
        f"F {result['test']['force_mae']:.1f} meV/Å{md}")
    return job_records(job, result)


def write_records(folder: Path, records: list[dict]) -> None:
    """records.csv: one row per model and evaluation set."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    with open(folder / "records.csv", "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(records)


def evaluation_sets(campaign: Campaign, pools: dict[str, list], data: dict[str, list], fps: dict,
                    folder: Path) -> dict[str, list[Atoms]]:
    """Every set each model is evaluated on (dael.benchmark.evaluation), by name."""
    e = campaign.explore
    holdouts = in_distribution_holdouts(data, campaign.seed, e.window,
                                        accepted_by_filter(campaign, data["entropy"], fps["entropy"]), folder)
    sets = {**holdouts, "test": data["test"], **by_test_kind(pools["test"], data["test"]),
            "indtest": broad_indtest(pools["test"], data["test"], campaign.seed),
            **by_condition(pools["test"], data["test"])}
    if data["transfer"]:
        sets |= {"transfer": data["transfer"], **by_transfer_kind(data["transfer"], e.pressures, e.temperatures)}
    return {name: structures for name, structures in sets.items() if structures}


def _notes(campaign: Campaign, data: dict[str, list], sets: dict, evaluated: dict[str, list], driver: str,
           test_driver: str, strategies: list[str], jobs: list, folder: Path, minutes: float, oracle: bool,
           disagreement: str | None) -> list[str]:
    """The report's plain-text notes: what ran, on what, and every caveat the run found."""
    e, bench = campaign.explore, campaign.benchmark
    sizes = {name: len(v) for name, v in data.items()}
    notes = [f"System {campaign.system}; oracle {campaign.label.oracle} (see dael.calculators.registry); "
             f"MD driver of the pools {driver}, of the test sets {test_driver}; bias {e.k_global} "
             f"({e.bias_scale} scale), energy window {e.window} eV/atom; filter {campaign.filter.mode} mode, min "
             f"gain {campaign.filter.min_gain}.",
             f"Pools (labelled structures): {sizes}; holdouts: entropy {len(evaluated['holdout-entropy'])} "
             f"({len(evaluated.get('holdout-entropy-window', []))} inside the energy window, "
             f"{len(evaluated.get('holdout-entropy-accepted', []))} accepted by the filter), random "
             f"{len(evaluated['holdout-random'])}; entropy-pool snapshots outside the window (kept in the pool, "
             f"taken by no windowed strategy): {int((~in_window(data['entropy'], e.window)).sum())}.",
             f"Sizes {sorted(bench.sizes)}, {bench.draws} draws, ≥ {bench.epochs} epochs and ≥ {bench.min_steps} "
             f"optimizer steps per model; this run (resumed parts excluded) took {minutes:.1f} min."]
    if disagreement:
        notes.append(disagreement)
    if bench.transfer_labels is not None:
        notes.append(f"Transfer set: {len(data['transfer'])} structures labelled (benchmark.transfer_labels "
                     f"{bench.transfer_labels}; a seeded subset spread over its conditions).")
    if not oracle:
        notes.append("Run without the oracle (--no-oracle): the model's own MD is not evaluated for models "
                     "evaluated by this run; a run of the same folder with the oracle adds it.")
    elif not bench.md_errors:
        notes.append("The model's own MD is judged by survival only (benchmark.md_errors false): no oracle labels "
                     "along it.")
    improving = [d.name for d in (model_dir(folder, job) for job in jobs)
                 if still_improving(json.loads((d / "metrics.json").read_text()))]
    if improving:
        notes.append(f"{len(improving)} of {len(jobs)} models stopped at their epoch limit with their best "
                     f"validation score in the last {IMPROVING_TAIL:.0%} of their epochs (still improving: "
                     f"{', '.join(improving[:6])}{', ...' if len(improving) > 6 else ''}): their errors are "
                     "training-limited; a larger benchmark.epochs lowers them.")
    seen = overlap(data)
    if seen:
        notes.append(f"{seen} of {len(data['test'])} test structures are also in a training pool: rebuild "
                     "pools/test.extxyz for a test set no strategy has seen.")
    short = sorted({(s, n) for s in strategies for n in bench.sizes for d in range(bench.draws)
                    if (s, d, n) not in sets})
    if short:
        notes.append("Sets a strategy could not fill (its filter accepted fewer structures): "
                     + ", ".join(f"{s} N={n}" for s, n in short) + ".")
    return notes


def run_benchmark(campaign: Campaign, seeds: dict[str, Atoms], folder: str | os.PathLike, say: Say = print,
                  pools_only: bool = False, strategies: list[str] | None = None, base: str | None = None,
                  where: str = "campaign", oracle: bool = True) -> Path:
    """Run (or resume) the benchmark of `campaign` (read from `where`, named in input errors) in `folder` for
    `strategies` (default: dael.benchmark.strategies.DEFAULT_STRATEGIES); `base`: a model (.nequip.zip or model
    directory) every model fine-tunes, None: from scratch. `pools_only`: explore, label and draw the training
    sets (sets.json), train nothing; returns the folder. `oracle=False`: train and evaluate on the folder's
    stored, labelled pools without building the oracle or an MD driver (a GPU machine without LAMMPS, say):
    the model's-own-MD evaluation, which needs the oracle, is left for a later run with it. Returns
    report.html."""
    seeds, boxed = boxed_phases(seeds, campaign.explore.vacuum)
    checked = preflight(campaign, where, base, epochs=campaign.benchmark.epochs, benchmark=True, oracle=oracle,
                        seeds=seeds)
    for line in boxed:
        say(f"benchmark: {line}")
    strategies = check_strategies(strategies or list(DEFAULT_STRATEGIES))
    folder = Path(folder)
    if not oracle:
        check_stored(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / "labels.db", "dael benchmark"):  # one runner per benchmark folder
        return _run(campaign, seeds, folder, say, pools_only, strategies, base, oracle, checked)


def _run(campaign: Campaign, seeds: dict[str, Atoms], folder: Path, say: Say, pools_only: bool,
         strategies: list[str], base: str | None, oracle: bool, checked: Checked) -> Path:
    parent, driver, test_driver = checked.base, checked.driver, checked.test_driver
    bench = campaign.benchmark
    settings = fingerprint_settings(campaign, seeds)
    start = time.perf_counter()
    pools = explore_pools(campaign, seeds, folder, settings, driver, test_driver, say, grow=oracle)
    data = label_pools(campaign, pools, folder, say)
    disagreement = describe(mismatch(data["anchor"]), driver)
    if disagreement:
        say(f"benchmark: warning: {disagreement}")
    say(f"benchmark: training sets of {', '.join(strategies)}")
    fps = pool_fingerprints(data, settings.cutoff)
    sets = training_sets(campaign, data, fps, folder, strategies)
    if pools_only:
        return folder
    jobs = sorted(sets, key=lambda k: (k[1], k[2], strategies.index(k[0])))
    evaluated = evaluation_sets(campaign, pools, data, fps, folder)
    judge = make_calculator(campaign.label.oracle, **campaign.label.params) if oracle and bench.md_errors else None
    ev = Evaluation(folder, data, sets, evaluated, {"epochs": bench.epochs, "seed": campaign.seed,
                                                    **campaign.train.settings},
                    parent, read(folder / "pools" / "md-starts.extxyz", ":"), judge, oracle,
                    robustness_of(campaign, seeds))
    say(f"benchmark: training {len(jobs)} models ({bench.workers} at a time, ≥ {bench.epochs} epochs, "
        f"≥ {bench.min_steps} steps)")
    with ThreadPoolExecutor(bench.workers) as pool:
        records = [r for rs in pool.map(lambda job: evaluate_job(campaign, ev, job, say), jobs) for r in rs]
    write_records(folder, records)
    notes = _notes(campaign, data, sets, evaluated, driver, test_driver, strategies, jobs, folder,
                   (time.perf_counter() - start) / 60, oracle, disagreement)
    settings_table = {"explore": asdict(campaign.explore), "filter": asdict(campaign.filter),
                      "benchmark": asdict(bench), "train": {**ev.train_settings, "base": base},
                      "fingerprint": settings.to_dict(), "strategies": strategies}
    histograms = {"entropy pool": data["entropy"], "random-MD pool": data["random"], "test set": data["test"]}
    return write_report(records, folder, f"dael benchmark: {campaign.system}", settings_table, notes,
                        energies=histograms)
