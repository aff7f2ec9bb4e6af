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
5. One model per (strategy, N, draw), trained identically (dael.train.training, from scratch, at least `epochs` and
   at least `min_steps` optimizer steps), run in parallel single-thread processes. Each is evaluated on the
   entropy pool's holdout (whole and within the window), the random pool's holdout, their union, the test
   set and each kind of test structure (thermal MD per temperature, strain probes), the transfer set, and by
   MD stability (`dael.explore.stability`: 64-atom cells at the hottest temperature and highest pressure);
   records.csv, then the report.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from ase import Atoms

from dael.benchmark.report import CONDITION
from dael.benchmark.strategies import DEFAULT_STRATEGIES, DRAW_SHARE, POOL_KEYS
from dael.campaign.config import Campaign
from dael.campaign.preflight import preflight
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import Fingerprints, fingerprint
from dael.util.files import mark, marked, write_atomic

Say = Callable[[str], None]
POOL_SOURCES = {"entropy": "entropy", "random": "random", "anchor": "anchor", "test": "test", "transfer": "test"}
TRANSFER_REPEAT = (2, 2, 2)
"""Supercell of each seed phase in the transfer set (8× the atoms the pools were explored with)."""

def _pools(campaign: Campaign, seeds: dict[str, Atoms], folder: Path, settings, driver: str, test_driver: str,
           say: Say) -> dict[str, list]:
    """Explore (biased and plain MD with `driver`, a registry name), anchors (relaxed by `driver`), test and
    transfer structures (MD with `test_driver`); cached as extxyz in folder/pools."""
    from ase.io import read, write

    from dael.explore.explorer import ANCHOR_STRAINS, Explorer, anchors, grid

    e, bench = campaign.explore, campaign.benchmark
    out = folder / "pools"
    out.mkdir(parents=True, exist_ok=True)
    pools: dict[str, list] = {}
    md = e.md(snapshots=bench.snapshots)
    for name, random in (("entropy", False), ("random", True)):
        path = out / f"{name}.extxyz"
        if not path.exists():
            offset = campaign.seed + (5000 if random else 0)
            jobs = [job for rep in range(bench.repeats)
                    for job in grid(seeds, e.pressures, e.temperatures, e.k_global, e.k_local, md,
                                    random_baseline=random, seed=offset + 10_000 * rep, bias_scale=e.bias_scale)]
            say(f"benchmark: {name} pool, {len(jobs)} trajectories")
            state = GlobalEntropy("atom", campaign.filter.eps, settings)
            Explorer(driver, state, out / f"{name}-md", min_gain=-np.inf, workers=e.workers).run(jobs)
            snaps = read(out / f"{name}-md" / "snapshots.extxyz", ":")
            write(path, snaps, format="extxyz")
        pools[name] = read(path, ":")
    path = out / "anchor.extxyz"
    if not path.exists():
        # enough that the mixed pool's largest set holds its anchor share after a draw's subsample
        need = bench.anchor_fraction * max(bench.sizes) / DRAW_SHARE
        thermal = max(2, int(np.ceil(need / (len(seeds) * len(e.pressures)))) - len(ANCHOR_STRAINS) - 1)
        say(f"benchmark: anchors ({thermal} thermal snapshots per phase and pressure)")
        write(path, anchors(seeds, driver, e.pressures, thermal=thermal, seed=campaign.seed),
              format="extxyz")
    pools["anchor"] = read(path, ":")
    path = out / "test.extxyz"
    if not path.exists():
        say("benchmark: independent test set")
        test = _plain_md(campaign, test_driver, seeds, e.pressures, e.temperatures, 5, 99_000, out / "test-md",
                         settings, repeats=bench.test_repeats)
        # no relaxed cells: with test_driver == driver they are the anchors' own (trained on by `mixed`)
        test += anchors(seeds, test_driver, e.pressures, strains=(0.92, 1.08), thermal=0, relaxed=False)
        write(path, _as_test(test), format="extxyz")
    pools["test"] = read(path, ":")
    path = out / "transfer.extxyz"
    if not path.exists():
        pressures, temperatures = off_grid(e.pressures, 5.0), off_grid(e.temperatures, 300.0)
        say(f"benchmark: transfer set (2×2×2 cells; {', '.join(f'{p:g}' for p in pressures)} GPa × "
            f"{', '.join(f'{t:g}' for t in temperatures)} K; new seeds)")
        bigger = {name: atoms.repeat(TRANSFER_REPEAT) for name, atoms in seeds.items()}
        transfer = _plain_md(campaign, test_driver, bigger, pressures, temperatures, 3, 77_000,
                             out / "transfer-md", settings)
        write(path, _as_test(transfer), format="extxyz")
    pools["transfer"] = read(path, ":")
    path = out / "md-starts.extxyz"
    if not path.exists():
        from dael.calculators.registry import make_calculator
        from dael.explore.stability import md_starts

        oracle = make_calculator(campaign.label.oracle, **campaign.label.params)
        write(path, md_starts(seeds, oracle, max(e.pressures)), format="extxyz")
    return pools


def _plain_md(campaign: Campaign, driver: str, phases: dict[str, Atoms], pressures: list[float],
              temperatures: list[float], snapshots: int, seed: int, folder: Path, settings,
              repeats: int = 1) -> list[Atoms]:
    """Snapshots of plain NVT MD (random steps) with `driver` of `phases` at every pressure (GPa) × temperature
    (K), `repeats` trajectories each, seeds offset by `seed` (+ 1000 per repeat) from the campaign's; run
    (resumably) in `folder`."""
    from ase.io import read

    from dael.explore.explorer import Explorer, grid

    e = campaign.explore
    jobs = [job for rep in range(repeats)
            for job in grid(phases, pressures, temperatures, [0.0], md=e.md(ensemble="nvt", snapshots=snapshots),
                            random_baseline=True, seed=campaign.seed + seed + 1000 * rep)]
    state = GlobalEntropy("atom", campaign.filter.eps, settings)
    Explorer(driver, state, folder, min_gain=-np.inf, workers=e.workers).run(jobs)
    return read(folder / "snapshots.extxyz", ":")


def _as_test(structures: list[Atoms]) -> list[Atoms]:
    for a in structures:
        a.info["source"] = "test"
    return structures


def _labelled(campaign: Campaign, pools: dict[str, list], folder: Path, say: Say) -> dict[str, list]:
    """Label every pool with the campaign's oracle (resumable); returns the labelled structures per pool."""
    from dael.data.dataset import SOURCES, Dataset, oracle_spec
    from dael.label.labelling import label_dataset

    lab = campaign.label
    db = Dataset(folder / "labels.db")
    spec = oracle_spec(lab.oracle, lab.params)
    done = marked(folder / "labels.done")
    if done is None or not set(pools) <= set(done.get("pools", [])):  # a pool added since: label it too
        for name, structures in pools.items():
            db.add(structures, oracle=spec, campaign=campaign.name, source=POOL_SOURCES[name])
        say(f"benchmark: labelling {len(db.pending(spec))} structures with {lab.oracle}")
        label_dataset(db, lab.oracle, lab.params, workers=lab.workers, timeout=lab.timeout, retries=lab.retries)
        mark(folder / "labels.done", {"labelled": len(db.labelled(sources=SOURCES)),
                                      "pools": sorted(set(pools) | set((done or {}).get("pools", [])))})
    rows = db.labelled(sources=SOURCES)
    return {name: with_tags(pools[name], rows) for name in pools}


STORED = ("entropy", "random", "anchor", "test", "transfer")
"""The labelled pools a benchmark folder stores (pools/NAME.extxyz, labels.db), beside pools/md-starts.extxyz."""
STORED_FILES = tuple(f"pools/{name}.extxyz" for name in (*STORED, "md-starts"))
"""The pool files of a benchmark folder, relative to it."""


def check_stored(folder: Path) -> None:
    """Raise one ValueError unless `folder` holds every pool of a benchmark, labelled (what a run without the
    oracle needs: it explores and labels nothing)."""
    missing = [name for name in STORED_FILES if not (folder / name).exists()]
    labelled = set((marked(folder / "labels.done") or {}).get("pools", []))
    missing += [f"the labels of the {name} pool" for name in STORED if name not in labelled]
    if missing:
        raise ValueError(f"{folder}: a benchmark without the oracle needs its pools explored and labelled; "
                         f"missing: {', '.join(missing)}. Run `dael benchmark` on this folder with the oracle "
                         "first, then again with --no-oracle.")


def off_grid(values: list[float], step: float) -> list[float]:
    """Conditions the pools never sampled: the midpoints of the sorted grid values and 15 % beyond the
    largest (`step` beyond a largest value <= 0, e.g. a single pressure of 0 GPa)."""
    grid_values = sorted(set(float(v) for v in values))
    top = grid_values[-1]
    beyond = top * 1.15 if top > 0 else top + step
    return [0.5 * (a + b) for a, b in zip(grid_values, grid_values[1:], strict=False)] + [round(beyond, 1)]


def with_tags(pool: list[Atoms], labelled: list[Atoms]) -> list[Atoms]:
    """The labelled rows of the structures in `pool` (matched by the rows' content hash: two pools may share
    a dataset source), with the pool structure's tags (trajectory, step, phase, temperature, energies, ...;
    rows written before the dataset kept them lack them); the dataset's own keys (status, source, ...) win."""
    from dael.data.dataset import structure_hash

    tags = {structure_hash(a): a.info for a in pool}
    mine = [atoms for atoms in labelled if atoms.info["hash"] in tags]
    for atoms in mine:
        atoms.info = {**tags[atoms.info["hash"]], **atoms.info}
    return mine


def pool_fingerprints(data: dict[str, list], cutoff: float) -> dict[str, Fingerprints]:
    """Per-atom fingerprints (cutoff Å) of the entropy, anchor and random-MD pools, one natx sized to them
    (compressed phases outgrow the seeds' margin; zero padding changes no gain)."""
    names = ("entropy", "anchor", "random")
    every = fingerprint([a for name in names for a in data[name]], cutoff=cutoff, natx=None)
    ends = np.cumsum([0] + [len(data[name]) for name in names])
    return {name: every.subset(ends[k], ends[k + 1]) for k, name in enumerate(names)}


def _training_sets(campaign: Campaign, data: dict[str, list], fps: dict[str, Fingerprints], folder: Path,
                   strategies: list[str]) -> dict:
    """{(strategy, draw, N): keys} (see dael.benchmark.strategies), none drawn from the in-distribution holdouts;
    fps: pool_fingerprints of data."""
    from dael.benchmark.strategies import select_sets

    path = folder / "sets.json"
    bench = campaign.benchmark
    saved = json.loads(path.read_text()) if path.exists() else {}
    wanted = {str(n) for n in bench.sizes}
    todo = [(s, d) for s in strategies for d in range(bench.draws) if not wanted <= set(saved.get(f"{s}/{d}", {}))]
    if todo:
        pools = selection_pools(campaign, data, fps, folder)
    for strategy, d in todo:  # sizes added since the sets were saved: drawn from the same seed stream
        have = saved.get(f"{strategy}/{d}", {})
        rng = draw_rng(campaign, strategy, d)
        missing = [n for n in bench.sizes if str(n) not in have]
        picked = select_sets(strategy, pools, missing, rng)  # null: a size the strategy cannot fill
        saved[f"{strategy}/{d}"] = {**have, **{str(n): picked.get(n) for n in missing}}
        write_atomic(path, json.dumps(saved).encode())
    sets = {(s, int(d), int(n)): keys for k, v in saved.items() for n, keys in v.items()
            for s, d in [k.split("/")] if s in strategies and int(d) < bench.draws and n in wanted and keys}
    return sets


STRATEGY_SEEDS = {"random": 1, "entropy-random": 2}
"""Seed streams of the permutation strategies (so that random and entropy-random draws are independent)."""


def draw_rng(campaign: Campaign, strategy: str, draw: int) -> np.random.Generator:
    """The random stream of one strategy's draw (the same on every rerun)."""
    return np.random.default_rng([campaign.seed, draw, STRATEGY_SEEDS.get(strategy, 0)])


def selection_pools(campaign: Campaign, data: dict[str, list], fps: dict[str, Fingerprints],
                    folder: Path | None = None):
    """What the strategies choose from (dael.benchmark.strategies.Pools): the labelled pools `data` less the
    in-distribution holdouts (holdout_indices; kept in `folder`), with their per-atom fingerprints `fps` and
    the campaign's filter, window, anchor share and exploration order."""
    from dael.benchmark.strategies import Pools

    hold = holdout_indices(data, campaign.seed, folder)
    rest = {name: np.setdiff1d(np.arange(len(data[name])), hold[name]) for name in hold}
    return Pools(data["entropy"], data["random"], data["anchor"], fps, rest, mode=campaign.filter.mode,
                 eps=campaign.filter.eps, min_gain=campaign.filter.min_gain, window=campaign.explore.window,
                 anchor_fraction=campaign.benchmark.anchor_fraction, order=campaign.explore.order)


def holdout_indices(data: dict[str, list], seed: int, folder: Path | None = None) -> dict[str, np.ndarray]:
    """The in-distribution holdout: 10 % (at least one) of the entropy and of the random pool, as indices into
    `data`'s labelled lists. A pool's holdout is its structures with the smallest seed-keyed digest of their
    content hash, so it depends on that pool alone (not on how many structures of another pool the oracle
    labelled). With `folder` it is kept in folder/holdouts.json (as content hashes) and read back on reruns;
    a folder whose training sets were drawn before that file existed keeps the holdout they were drawn
    against (one permutation stream over both pools)."""
    path = None if folder is None else Path(folder) / "holdouts.json"
    if path is not None and path.exists():
        held = json.loads(path.read_text())
    else:
        if path is not None and (path.parent / "sets.json").exists():
            rng = np.random.default_rng(seed)
            picks = {name: rng.permutation(len(data[name]))[: _holdout_size(len(data[name]))]
                     for name in ("entropy", "random")}
        else:
            picks = {name: _smallest_digests(data[name], seed) for name in ("entropy", "random")}
        held = {name: [data[name][i].info["hash"] for i in idx] for name, idx in picks.items()}
        if path is not None:
            write_atomic(path, json.dumps(held).encode())
    sets = {name: set(hashes) for name, hashes in held.items()}
    return {name: np.array([i for i, a in enumerate(data[name]) if a.info["hash"] in sets[name]], dtype=np.int64)
            for name in sets}


def _holdout_size(n: int) -> int:
    return max(1, n // 10)


def _smallest_digests(structures: list[Atoms], seed: int) -> np.ndarray:
    """Indices of the 10 % (at least one) of `structures` whose sha256(seed, content hash) is smallest."""
    import hashlib

    digests = [hashlib.sha256(f"{seed}:{a.info['hash']}".encode()).hexdigest() for a in structures]
    return np.sort(np.argsort(digests)[: _holdout_size(len(structures))])


def accepted_by_filter(campaign: Campaign, structures: list[Atoms], fps: Fingerprints) -> np.ndarray:
    """Mask of the biased-MD snapshots (per-atom fingerprints `fps`) the campaign's streaming filter accepts
    (window, dual modes, min_gain) when they arrive in the pool's order, the order the explorer produced them:
    the dataset a campaign on this exploration would label, every rejected snapshot being close to what it
    already holds."""
    from dael.benchmark.strategies import filter_stream

    f = campaign.filter
    rows, taken = filter_stream(structures, fps, np.arange(len(structures)), campaign.explore.window, f.mode,
                                f.eps, f.min_gain)
    accepted = np.zeros(len(structures), dtype=bool)
    accepted[rows[taken]] = True
    return accepted


def in_distribution_holdouts(data: dict[str, list], seed: int, window: float | None,
                             accepted: np.ndarray | None = None, folder: Path | None = None
                             ) -> dict[str, list[Atoms]]:
    """The benchmark's in-distribution evaluation sets: 'holdout-entropy', 'holdout-entropy-window' (its
    snapshots inside the energy window `window` eV/atom, the ones a windowed strategy could have picked),
    'holdout-entropy-accepted' (those of them in `accepted`, a mask over the entropy pool: the paper's holdout,
    a random 10 % of the dataset its filter accepted), 'holdout-random' and the union 'holdout'. An empty
    subset is left out. `folder`: where the holdout is kept (holdout_indices)."""
    from dael.explore.window import in_window

    hold = holdout_indices(data, seed, folder)
    entropy, random = ([data[name][i] for i in hold[name]] for name in ("entropy", "random"))
    inside = [a for a, ok in zip(entropy, in_window(entropy, window), strict=True) if ok]
    taken = [] if accepted is None else [data["entropy"][i] for i in hold["entropy"] if accepted[i]]
    return {"holdout-entropy": entropy, **({"holdout-entropy-window": inside} if inside else {}),
            **({"holdout-entropy-accepted": taken} if taken else {}),
            "holdout-random": random, "holdout": entropy + random}


def by_transfer_kind(labelled: list[Atoms], pressures: list[float], temperatures: list[float]
                     ) -> dict[str, list[Atoms]]:
    """The transfer structures split into 'transfer-inside' (pressure and temperature within the grid's
    ranges: interpolation) and 'transfer-beyond' (either above the grid's largest: extrapolation)."""
    groups: dict[str, list[Atoms]] = {"transfer-inside": [], "transfer-beyond": []}
    for atoms in labelled:
        beyond = atoms.info["pressure_GPa"] > max(pressures) or atoms.info["temperature_K"] > max(temperatures)
        groups["transfer-beyond" if beyond else "transfer-inside"].append(atoms)
    return {name: group for name, group in groups.items() if group}


def overlap(data: dict[str, list]) -> int:
    """How many labelled test structures are also in a training pool (entropy, random MD or anchors)."""
    from dael.data.dataset import TRAINING_SOURCES  # the training pools are named as their dataset sources

    trained = {a.info["hash"] for name in TRAINING_SOURCES for a in data.get(name, [])}
    return sum(a.info["hash"] in trained for a in data["test"])


def by_test_kind(pool: list[Atoms], labelled: list[Atoms]) -> dict[str, list[Atoms]]:
    """The labelled test structures by kind: 'test-<T>K' (thermal MD at T) and 'test-strain' (0.92/1.08
    strains of the relaxed phases), matched to the unlabelled pool by content hash."""
    return _grouped(pool, labelled, lambda info: "test-strain" if info.get("temperature_K") is None
                    else f"test-{float(info['temperature_K']):.0f}K")


def by_condition(pool: list[Atoms], labelled: list[Atoms]) -> dict[str, list[Atoms]]:
    """The labelled test structures by condition: 'test@<phase> <P> GPa <T> K' (thermal MD of that phase at
    that pressure and temperature) and 'test@<phase> <P> GPa strains': where on the grid a model errs."""
    def name(info: dict) -> str:
        t = info.get("temperature_K")
        return (f"{CONDITION}{info.get('phase')} {float(info['pressure_GPa']):g} GPa "
                + ("strains" if t is None else f"{float(t):.0f} K"))

    return _grouped(pool, labelled, name)


def _grouped(pool: list[Atoms], labelled: list[Atoms], name: Callable[[dict], str]) -> dict[str, list[Atoms]]:
    """The labelled structures of `pool` (matched by content hash) grouped by name(pool structure's info)."""
    from dael.data.dataset import structure_hash

    names = {structure_hash(atoms): name(atoms.info) for atoms in pool}
    groups: dict[str, list[Atoms]] = {}
    for atoms in labelled:
        key = names.get(structure_hash(atoms))
        if key is not None:
            groups.setdefault(key, []).append(atoms)
    return dict(sorted(groups.items()))


def _members(keys: list[str], data: dict[str, list]) -> list[Atoms]:
    return [data[POOL_KEYS[key[0]]][int(key[1:])] for key in keys]


def model_dir(folder: Path, job: tuple[str, int, int]) -> Path:
    """The model directory of one (strategy, draw, size) job of a benchmark folder."""
    strategy, draw, n = job
    return folder / "models" / f"{strategy}-N{n}-d{draw}"


def job_records(job: tuple[str, int, int], result: dict) -> list[dict]:
    """One record per evaluation set of a model's evaluation.json entry, as records.csv holds them."""
    strategy, d, n = job
    return [{"pool": strategy, "size": n, "draw": d, "set": which,
             **{k: v for k, v in r.items() if k.endswith(("_mae", "_rmse")) or k == "survived"}}
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
    from ase.io import read

    from dael.benchmark.report import write_report
    from dael.benchmark.strategies import check_strategies
    from dael.calculators.deploy import load_calculator
    from dael.calculators.registry import make_calculator
    from dael.campaign.agreement import describe, mismatch
    from dael.campaign.loop import fingerprint_settings
    from dael.explore.stability import md_stability
    from dael.explore.window import in_window
    from dael.train.metrics import evaluate_sets
    from dael.train.settings import TrainSettings
    from dael.train.training import IMPROVING_TAIL, still_improving, train

    checked = preflight(campaign, where, base, epochs=campaign.benchmark.epochs, benchmark=True, oracle=oracle)
    parent, driver, test_driver = checked.base, checked.driver, checked.test_driver
    strategies = check_strategies(strategies or list(DEFAULT_STRATEGIES))
    folder = Path(folder)
    if not oracle:
        check_stored(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bench, e = campaign.benchmark, campaign.explore
    settings = fingerprint_settings(campaign, seeds)
    start = time.perf_counter()
    pools = _pools(campaign, seeds, folder, settings, driver, test_driver, say)
    data = _labelled(campaign, pools, folder, say)
    disagreement = describe(mismatch(data["anchor"]), driver)
    if disagreement:
        say(f"benchmark: warning: {disagreement}")
    say(f"benchmark: training sets of {', '.join(strategies)}")
    fps = pool_fingerprints(data, settings.cutoff)
    sets = _training_sets(campaign, data, fps, folder, strategies)
    if pools_only:
        return folder
    jobs = sorted(sets, key=lambda k: (k[1], k[2], strategies.index(k[0])))
    train_settings = {"epochs": bench.epochs, "seed": campaign.seed, **campaign.train.settings}
    holdouts = in_distribution_holdouts(data, campaign.seed, e.window,
                                        accepted_by_filter(campaign, data["entropy"], fps["entropy"]), folder)
    evaluation_sets = {**holdouts, "test": data["test"],
                       **by_test_kind(pools["test"], data["test"]), **by_condition(pools["test"], data["test"]),
                       "transfer": data["transfer"],
                       **by_transfer_kind(data["transfer"], e.pressures, e.temperatures)}
    starts = read(folder / "pools" / "md-starts.extxyz", ":")
    judge = make_calculator(campaign.label.oracle, **campaign.label.params) if oracle else None
    wanted = [*evaluation_sets, "md"] if oracle else list(evaluation_sets)

    def one(job: tuple) -> list[dict]:
        strategy, d, n = job
        out = model_dir(folder, job)
        done = out / "evaluation.json"
        if not done.exists():
            settings = TrainSettings(**train_settings)
            settings.epochs = epochs_for(n, settings, bench.epochs, bench.min_steps)
            train(_members(sets[job], data), out, parent=parent, settings=settings, progress=None, overwrite=True)
        result = marked(done) or {}
        missing = [name for name in wanted if name not in result]
        if missing:  # a model evaluated by an earlier version of the benchmark gets the new sets only
            calc = load_calculator(out, device=train_settings.get("device", "cpu"))
            result.update(evaluate_sets(calc, {name: evaluation_sets[name] for name in missing if name != "md"}))
            if "md" in missing:
                result["md"] = md_stability(calc, starts, judge, max(e.temperatures), bench.md_steps,
                                            seed=campaign.seed)
            mark(done, result)
        md = f"; MD survived {result['md']['survived']:.2f}" if "md" in result else ""
        say(f"benchmark: {strategy} N={n} draw {d}: test E {result['test']['energy_mae']:.2f} meV/atom, "
            f"F {result['test']['force_mae']:.1f} meV/Å{md}")
        return job_records(job, result)

    say(f"benchmark: training {len(jobs)} models ({bench.workers} at a time, ≥ {bench.epochs} epochs, "
        f"≥ {bench.min_steps} steps)")
    with ThreadPoolExecutor(bench.workers) as pool:
        records = [r for rs in pool.map(one, jobs) for r in rs]
    columns = list(dict.fromkeys(k for r in records for k in r))
    with open(folder / "records.csv", "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(records)
    minutes = (time.perf_counter() - start) / 60
    sizes = {name: len(v) for name, v in data.items()}
    short = sorted({(s, n) for s in strategies for n in bench.sizes for d in range(bench.draws)
                    if (s, d, n) not in sets})
    notes = [f"System {campaign.system}; oracle {campaign.label.oracle} (see dael.calculators.registry); "
             f"MD driver of the pools {driver}, of the test sets {test_driver}; bias {e.k_global} "
             f"({e.bias_scale} scale), energy window {e.window} "
             f"eV/atom; filter {campaign.filter.mode} mode, min gain {campaign.filter.min_gain}.",
             f"Pools (labelled structures): {sizes}; holdouts: entropy {len(holdouts['holdout-entropy'])} "
             f"({len(holdouts.get('holdout-entropy-window', []))} inside the energy window, "
             f"{len(holdouts.get('holdout-entropy-accepted', []))} accepted by the filter), random "
             f"{len(holdouts['holdout-random'])}; entropy-pool snapshots "
             f"outside the window (kept in the pool, taken by no windowed strategy): "
             f"{int((~in_window(data['entropy'], e.window)).sum())}.",
             f"Sizes {sorted(bench.sizes)}, {bench.draws} draws, ≥ {bench.epochs} epochs and ≥ {bench.min_steps} "
             f"optimizer steps per model; this run (resumed parts excluded) took {minutes:.1f} min."]
    if disagreement:
        notes.append(disagreement)
    if not oracle:
        notes.append("Run without the oracle (--no-oracle): the model's own MD is not evaluated for models "
                     "evaluated by this run; a run of the same folder with the oracle adds it.")
    improving = [d.name for d in (model_dir(folder, job) for job in jobs)
                 if still_improving(json.loads((d / "metrics.json").read_text()))]
    if improving:
        notes.append(f"{len(improving)} of {len(jobs)} models stopped at their epoch limit with their best "
                     f"validation score in the last {IMPROVING_TAIL:.0%} of their epochs (still improving: "
                     f"{', '.join(improving[:6])}{', ...' if len(improving) > 6 else ''}): their errors are "
                     "training-limited; a larger "
                     "benchmark.epochs lowers them.")
    seen = overlap(data)
    if seen:
        notes.append(f"{seen} of {len(data['test'])} test structures are also in a training pool (a test set built "
                     "by an older version held the relaxed cells, which are anchors too): rebuild pools/test.extxyz "
                     "for a test set no strategy has seen.")
    if short:
        notes.append("Sets a strategy could not fill (its filter accepted fewer structures): "
                     + ", ".join(f"{s} N={n}" for s, n in short) + ".")
    settings_table = {"explore": asdict(e), "filter": asdict(campaign.filter),
                      "benchmark": asdict(bench), "train": {**train_settings, "base": base},
                      "fingerprint": settings.to_dict(), "strategies": strategies}
    histograms = {"entropy pool": data["entropy"], "random-MD pool": data["random"], "test set": data["test"]}
    return write_report(records, folder, f"dael benchmark: {campaign.system}", settings_table, notes,
                        energies=histograms)
