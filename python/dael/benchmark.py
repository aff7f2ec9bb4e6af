"""Entropy-selected vs random-MD training sets: learning curves with the same oracle and training (docs/method.md §6).

Protocol (`run_benchmark`), all in one folder, every stage resumable:

1. Pools. *Entropy*: biased MD (k_g, k_l of the campaign's grid) over phases × pressures × temperatures,
   `repeats` seeds each, `snapshots` per trajectory. *Random*: the same grid and step counts with k = 0
   and snapshots at uniformly random steps (random-MD). *Anchors*: each phase relaxed at each pressure,
   isotropic strains 0.95/0.97/1.03/1.05, 300 K MD snapshots (the mixed pool's near-equilibrium share;
   as many as its largest training set needs).
   *Test* (independent): plain MD at every phase/pressure/temperature with other seeds, plus strains
   0.92/1.08 of the relaxed phases.
2. Everything is labelled by the campaign's oracle (one database, tagged by source).
3. In-distribution holdout: 10 % of each of the entropy and random pools, set aside before selection.
4. Training sets per draw d (nested over sizes N): entropy = greedy ΔH picks (per-atom mode) from a random
   80 % of the entropy pool; random = a random permutation of the random pool; mixed = a fraction
   `anchor_fraction` of N greedy picks among the anchors, the rest greedy from the entropy pool.
5. One model per (pool, N, draw), trained identically (dael.train, from scratch, at least `epochs` and at
   least `min_steps` optimizer steps, so small sets are not under-trained), run in parallel
   single-thread processes; errors on the holdout, the test set and each kind of test structure (thermal MD
   per temperature, strain probes) go to records.csv, then the report.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from ase import Atoms

from dael.campaign import Campaign
from dael.entropy import GlobalEntropy
from dael.fingerprint import fingerprint

Say = Callable[[str], None]
POOL_SOURCES = {"entropy": "entropy", "random": "random", "anchor": "anchor", "test": "test"}
DRAW_SHARE = 0.8
"""Share of the entropy and anchor pools each draw selects from (draws differ by this random subsample)."""


def _pools(campaign: Campaign, seeds: dict[str, Atoms], folder: Path, settings, say: Say) -> dict[str, list]:
    """Explore (biased and plain), anchors and test structures; cached as extxyz in folder/pools."""
    from ase.io import read, write

    from dael.explore import ANCHOR_STRAINS, Explorer, anchors, grid
    from dael.md import MDSettings

    e, bench = campaign.explore, campaign.benchmark
    out = folder / "pools"
    out.mkdir(parents=True, exist_ok=True)
    pools: dict[str, list] = {}
    md = MDSettings(ensemble=e.ensemble, steps=e.steps, snapshots=bench.snapshots, dt=e.dt, friction=e.friction,
                    thermalize=e.thermalize, relax_steps=e.relax_steps)
    for name, random in (("entropy", False), ("random", True)):
        path = out / f"{name}.extxyz"
        if not path.exists():
            offset = campaign.seed + (5000 if random else 0)
            jobs = [job for rep in range(bench.repeats)
                    for job in grid(seeds, e.pressures, e.temperatures, e.k_global, e.k_local, md,
                                    random_baseline=random, seed=offset + 10_000 * rep)]
            say(f"benchmark: {name} pool, {len(jobs)} trajectories")
            state = GlobalEntropy(campaign.filter.mode, campaign.filter.eps, settings)
            Explorer(campaign.driver, state, out / f"{name}-md", min_gain=-np.inf, workers=e.workers).run(jobs)
            snaps = read(out / f"{name}-md" / "snapshots.extxyz", ":")
            write(path, snaps, format="extxyz")
        pools[name] = read(path, ":")
    path = out / "anchor.extxyz"
    if not path.exists():
        # enough that the mixed pool's largest set holds its anchor share after a draw's subsample
        need = bench.anchor_fraction * max(bench.sizes) / DRAW_SHARE
        thermal = max(2, int(np.ceil(need / (len(seeds) * len(e.pressures)))) - len(ANCHOR_STRAINS) - 1)
        say(f"benchmark: anchors ({thermal} thermal snapshots per phase and pressure)")
        write(path, anchors(seeds, campaign.driver, e.pressures, thermal=thermal, seed=campaign.seed),
              format="extxyz")
    pools["anchor"] = read(path, ":")
    path = out / "test.extxyz"
    if not path.exists():
        say("benchmark: independent test set")
        test_md = MDSettings(ensemble="nvt", steps=e.steps, snapshots=5, thermalize=e.thermalize,
                             relax_steps=e.relax_steps)
        jobs = grid(seeds, e.pressures, e.temperatures, [0.0], md=test_md, random_baseline=True,
                    seed=campaign.seed + 99_000)
        state = GlobalEntropy(campaign.filter.mode, campaign.filter.eps, settings)
        Explorer(campaign.driver, state, out / "test-md", min_gain=-np.inf, workers=e.workers).run(jobs)
        test = read(out / "test-md" / "snapshots.extxyz", ":")
        test += anchors(seeds, campaign.driver, e.pressures, strains=(0.92, 1.08), thermal=0)
        for a in test:
            a.info["source"] = "test"
        write(path, test, format="extxyz")
    pools["test"] = read(path, ":")
    return pools


def _labelled(campaign: Campaign, pools: dict[str, list], folder: Path, say: Say) -> dict[str, list]:
    """Label every pool with the campaign's oracle (resumable); returns the labelled structures per pool."""
    from dael.dataset import Dataset, oracle_spec
    from dael.label import label_dataset

    lab = campaign.label
    db = Dataset(folder / "labels.db")
    spec = oracle_spec(lab.oracle, lab.params)
    if not (folder / "labels.done").exists():
        for name, structures in pools.items():
            db.add(structures, oracle=spec, campaign=campaign.name, source=POOL_SOURCES[name])
        say(f"benchmark: labelling {len(db.pending(spec))} structures with {lab.oracle}")
        label_dataset(db, lab.oracle, lab.params, workers=lab.workers, timeout=lab.timeout, retries=lab.retries)
        (folder / "labels.done").write_text("done")
    return {name: db.labelled(sources=[POOL_SOURCES[name]]) for name in pools}


def _training_sets(campaign: Campaign, data: dict[str, list], settings, folder: Path) -> tuple[dict, list]:
    """{(pool, draw): structure order} for nested training sets, and the in-distribution holdout."""
    path = folder / "sets.json"
    bench = campaign.benchmark
    n_max = max(bench.sizes)
    hold = holdout_indices(data, campaign.seed)
    holdout = [data[name][i] for name in hold for i in hold[name]]
    if path.exists():
        saved = json.loads(path.read_text())
        return {tuple(k.split("/")): v for k, v in saved.items()}, holdout
    rest = {name: np.setdiff1d(np.arange(len(data[name])), hold[name]) for name in hold}
    # natx sized to these pools (compressed phases outgrow the seeds' margin; zero padding changes no gain)
    both = fingerprint(data["entropy"] + data["anchor"], cutoff=settings.cutoff, natx=None)
    n_e = len(data["entropy"])
    fps = {"entropy": both.subset(0, n_e), "anchor": both.subset(n_e, len(both))}
    settings = both.settings
    sets: dict[tuple, list] = {}
    for d in range(bench.draws):
        draw_rng = np.random.default_rng(campaign.seed + 1 + d)
        sets[("random", str(d))] = [int(i) for i in draw_rng.permutation(rest["random"])[:n_max]]
        sub = np.sort(draw_rng.choice(rest["entropy"], size=int(DRAW_SHARE * len(rest["entropy"])), replace=False))
        state = GlobalEntropy(campaign.filter.mode, campaign.filter.eps, settings)
        picks, _ = state.greedy(_rows(fps["entropy"], sub), n_max, min_gain=-np.inf, lazy=len(sub) > 5000)
        sets[("entropy", str(d))] = [int(sub[i]) for i in picks]
        n_anchor = int(round(bench.anchor_fraction * n_max))
        state = GlobalEntropy(campaign.filter.mode, campaign.filter.eps, settings)
        a_sub = np.sort(draw_rng.choice(len(data["anchor"]), size=max(1, int(DRAW_SHARE * len(data["anchor"]))),
                                        replace=False))
        a_picks, _ = state.greedy(_rows(fps["anchor"], a_sub), n_anchor, min_gain=-np.inf)
        e_picks, _ = state.greedy(_rows(fps["entropy"], sub), n_max - len(a_picks), min_gain=-np.inf,
                                  lazy=len(sub) > 5000)
        # interleave so that every prefix of size N holds about anchor_fraction·N anchors
        sets[("mixed", str(d))] = _interleave([f"a{a_sub[i]}" for i in a_picks], [f"e{sub[i]}" for i in e_picks],
                                              bench.anchor_fraction)
    path.write_text(json.dumps({"/".join(k): v for k, v in sets.items()}))
    return sets, holdout


def holdout_indices(data: dict[str, list], seed: int) -> dict[str, np.ndarray]:
    """The in-distribution holdout: a random 10 % (at least one) of the entropy and of the random pool."""
    rng = np.random.default_rng(seed)
    return {name: rng.permutation(len(data[name]))[: max(1, len(data[name]) // 10)] for name in ("entropy", "random")}


def _rows(fps, subset: np.ndarray) -> list[np.ndarray]:
    return [fps.of(int(i)) for i in subset]


def _interleave(anchors: list, rest: list, fraction: float) -> list:
    out, a, r = [], 0, 0
    while a < len(anchors) or r < len(rest):
        if a < len(anchors) and (r >= len(rest) or a < fraction * (len(out) + 1)):
            out.append(anchors[a])
            a += 1
        else:
            out.append(rest[r])
            r += 1
    return out


def by_test_kind(pool: list[Atoms], labelled: list[Atoms]) -> dict[str, list[Atoms]]:
    """The labelled test structures by kind: 'test-<T>K' (thermal MD at T) and 'test-strain' (0.92/1.08
    strains of the relaxed phases), matched to the unlabelled pool by content hash."""
    from dael.dataset import structure_hash

    kinds = {}
    for atoms in pool:
        t = atoms.info.get("temperature_K")
        kinds[structure_hash(atoms)] = "test-strain" if t is None else f"test-{float(t):.0f}K"
    groups: dict[str, list[Atoms]] = {}
    for atoms in labelled:
        kind = kinds.get(structure_hash(atoms))
        if kind is not None:
            groups.setdefault(kind, []).append(atoms)
    return dict(sorted(groups.items()))


def _members(pool: str, order: list, data: dict[str, list], n: int) -> list[Atoms]:
    if pool != "mixed":
        return [data[pool][i] for i in order[:n]]
    return [data["anchor" if key[0] == "a" else "entropy"][int(key[1:])] for key in order[:n]]


def epochs_for(n: int, settings, epochs: int, min_steps: int) -> int:
    """At least `epochs`, and enough that n structures (less the validation share) give `min_steps` optimizer
    steps at the settings' batch size: small training sets are trained as long, not as few times, as large."""
    steps_per_epoch = max(1, int(np.ceil(n * (1 - settings.val_fraction) / settings.batch_size)))
    return max(epochs, int(np.ceil(min_steps / steps_per_epoch)))


def run_benchmark(campaign: Campaign, seeds: dict[str, Atoms], folder: str | os.PathLike, say: Say = print,
                  pools_only: bool = False) -> Path:
    """Run (or resume) the benchmark of `campaign` in `folder`; returns report.html."""
    from dael.files import write_atomic
    from dael.loop import fingerprint_settings
    from dael.report import write_report
    from dael.train import TrainSettings, evaluate, load_calculator, train

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bench = campaign.benchmark
    settings = fingerprint_settings(campaign, seeds)
    start = time.perf_counter()
    pools = _pools(campaign, seeds, folder, settings, say)
    data = _labelled(campaign, pools, folder, say)
    if pools_only:
        return folder
    sets, holdout = _training_sets(campaign, data, settings, folder)
    jobs = [(pool, n, d) for d in range(bench.draws) for n in sorted(bench.sizes)
            for pool in ("entropy", "mixed", "random") if len(sets[(pool, str(d))]) >= n]
    train_settings = {"epochs": bench.epochs, "seed": campaign.seed, **campaign.train.settings}

    evaluation_sets = {"holdout": holdout, "test": data["test"], **by_test_kind(pools["test"], data["test"])}

    def one(job: tuple) -> list[dict]:
        pool, n, d = job
        out = folder / "models" / f"{pool}-N{n}-d{d}"
        done = out / "evaluation.json"
        if not done.exists():
            members = _members(pool, sets[(pool, str(d))], data, n)
            settings = TrainSettings(**train_settings)
            settings.epochs = epochs_for(n, settings, bench.epochs, bench.min_steps)
            train(members, out, settings=settings, progress=None, overwrite=True)
        result = json.loads(done.read_text()) if done.exists() else {}
        missing = [name for name in evaluation_sets if name not in result]
        if missing:  # a model evaluated by an earlier version of the benchmark gets the new sets only
            calc = load_calculator(out)
            result.update({name: evaluate(calc, evaluation_sets[name]) for name in missing})
            write_atomic(done, json.dumps(result).encode())
        say(f"benchmark: {pool} N={n} draw {d}: holdout E {result['holdout']['energy_mae']:.2f} meV/atom, "
            f"F {result['holdout']['force_mae']:.1f} meV/Å")
        return [{"pool": pool, "size": n, "draw": d, "set": which,
                 **{k: v for k, v in r.items() if k.endswith(("_mae", "_rmse"))}} for which, r in result.items()]

    say(f"benchmark: training {len(jobs)} models ({bench.workers} at a time, ≥ {bench.epochs} epochs, "
        f"≥ {bench.min_steps} steps)")
    with ThreadPoolExecutor(bench.workers) as pool:
        records = [r for rs in pool.map(one, jobs) for r in rs]
    with open(folder / "records.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(records[0]))
        w.writeheader()
        w.writerows(records)
    minutes = (time.perf_counter() - start) / 60
    sizes = {name: len(v) for name, v in data.items()}
    notes = [f"System {campaign.system}; oracle {campaign.label.oracle} (a stand-in for DFT, see dael.oracles); "
             f"MD driver {campaign.driver}.",
             f"Pools (labelled structures): {sizes}; in-distribution holdout {len(holdout)}.",
             f"Sizes {sorted(bench.sizes)}, {bench.draws} draws, ≥ {bench.epochs} epochs and ≥ {bench.min_steps} "
             "optimizer steps per model; "
             f"this run (resumed parts excluded) took {minutes:.1f} min."]
    settings_table = {"explore": asdict(campaign.explore), "filter": asdict(campaign.filter),
                      "benchmark": asdict(bench), "train": train_settings, "fingerprint": settings.to_dict()}
    return write_report(records, folder, f"dael benchmark: {campaign.system}", settings_table, notes)
