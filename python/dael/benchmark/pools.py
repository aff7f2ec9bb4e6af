"""The benchmark's pools: biased MD (entropy), random MD, near-equilibrium anchors, the independent test and
transfer sets and the MD-stability starts, explored once and stored as extxyz in FOLDER/pools, then labelled by
the campaign's oracle into FOLDER/labels.db (both resumable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write

from dael.benchmark.evaluation import remember_pool
from dael.benchmark.strategies import (
    DRAW_SHARE,
)
from dael.calculators.registry import make_calculator
from dael.campaign.config import Campaign
from dael.check.settings import beyond
from dael.data.dataset import SOURCES, Dataset, oracle_spec, structure_hash
from dael.explore.anchors import ANCHOR_STRAINS, anchors
from dael.explore.explorer import Explorer, grid
from dael.explore.stability import md_starts
from dael.label.labelling import label_dataset, label_options
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import Fingerprints, fingerprint
from dael.numeric.natx import fingerprint_for
from dael.util import periodicity
from dael.util.files import mark, marked, write_extxyz

Say = Callable[[str], None]


POOL_SOURCES = {"entropy": "entropy", "random": "random", "anchor": "anchor", "test": "test", "transfer": "test"}
REPEAT_SEED_STRIDE = 10_000
"""Seed step between an MD pool's repeats: repeat r's trajectories get seeds offset + r·stride + n (n < grid size)."""
TRANSFER_REPEAT = (2, 2, 2)
"""Supercell of each seed phase in the transfer set (8× the atoms the pools were explored with)."""
TEST_STRAINS = (0.92, 1.08)
"""Linear factors of the test set's strain probes of each relaxed phase (harder than the anchors' ±3–5 %)."""
EQUILIBRIUM_RATTLE = 0.01
"""Gaussian σ (Å) of the test set's equilibrium probes: the relaxed phases, rattled."""

def explore_pools(campaign: Campaign, seeds: dict[str, Atoms], folder: Path, settings, driver: str, test_driver: str,
           say: Say, grow: bool = True) -> dict[str, list]:
    """Explore (biased and plain MD with `driver`, a registry name), anchors (relaxed by `driver`), test and
    transfer structures (MD with `test_driver`); cached as extxyz in folder/pools. `grow` False (a run without
    the oracle, which could not label new structures): stored pools that the campaign asks to grow are one
    ValueError."""
    e, bench = campaign.explore, campaign.benchmark
    out = folder / "pools"
    out.mkdir(parents=True, exist_ok=True)
    pools: dict[str, list] = {name: md_pool(campaign, seeds, out, settings, driver, name, say, grow)
                              for name in ("entropy", "random")}
    pools["anchor"] = anchor_pool(campaign, seeds, out, driver, say, grow)
    path = out / "test.extxyz"
    if not path.exists():
        say("benchmark: independent test set")
        test = plain_md(campaign, test_driver, seeds, e.pressures, e.temperatures, 5, 99_000, out / "test-md",
                         settings, repeats=bench.test_repeats)
        # no relaxed cells: with test_driver == driver they are the anchors' own (trained on by `mixed`); the
        # equilibrium probes are rattled copies of them
        test += anchors(seeds, test_driver, e.pressures, strains=TEST_STRAINS, thermal=0, relaxed=False,
                        slab_cell=e.slab_cell,
                        rattle=EQUILIBRIUM_RATTLE, seed=campaign.seed + 99_000)
        write(path, _as_test(test), format="extxyz")
    pools["test"] = read(path, ":")
    path = out / "transfer.extxyz"
    if not path.exists():
        pressures, temperatures = off_grid(e.pressures, 5.0), off_grid(e.temperatures, 300.0)
        say(f"benchmark: transfer set (2×2×2 cells; {', '.join(f'{p:g}' for p in pressures)} GPa × "
            f"{', '.join(f'{t:g}' for t in temperatures)} K; new seeds)")
        bigger = {name: atoms.repeat(periodicity.repeats(atoms, TRANSFER_REPEAT)) for name, atoms in seeds.items()}
        bulk = {name: atoms for name, atoms in bigger.items() if periodicity.kind(atoms) == periodicity.BULK}
        other = {name: atoms for name, atoms in bigger.items() if name not in bulk}  # slabs, molecules: 0 GPa only
        transfer = plain_md(campaign, test_driver, bulk, pressures, temperatures, 3, 77_000, out / "transfer-md",
                            settings) if bulk else []
        if other:
            transfer += plain_md(campaign, test_driver, other, [0.0], temperatures, 3, 77_000,
                                 out / "transfer-md-0GPa", settings)
        if bench.transfer_labels is not None:
            transfer = spread(transfer, bench.transfer_labels, campaign.seed)
        write(path, _as_test(transfer), format="extxyz")
    pools["transfer"] = read_pool(path)
    path = out / "md-starts.extxyz"
    if not path.exists():  # relaxed by the test sets' MD driver (the oracle unless it is too costly for MD)
        write(path, md_starts(seeds, make_calculator(test_driver), max(e.pressures)), format="extxyz")
    return pools


def md_pool(campaign: Campaign, seeds: dict[str, Atoms], out: Path, settings, driver: str, name: str,
            say: Say, grow: bool = True) -> list[Atoms]:
    """The stored biased-MD ('entropy') or plain-MD ('random') pool out/NAME.extxyz, explored by `driver` over the
    grid, benchmark.repeats trajectories per grid point. A rerun with more repeats explores only the new
    repeats (the biased trajectories against a state that holds the stored pool) and appends their snapshots:
    the stored structures (a subset of their trajectories' snapshots, perhaps) stay first and unchanged, so
    training sets, holdouts and labels keep addressing them, and the folder's labels.done is removed so that
    the new ones are labelled. out/NAME.json records the repeats explored (a pool stored without it counts
    the repeats its snapshots' trajectory tags name; one without tags counts as complete)."""
    e, bench = campaign.explore, campaign.benchmark
    path, log = out / f"{name}.extxyz", out / f"{name}.json"
    random = name == "random"
    offset = campaign.seed + (5000 if random else 0)
    reps = [grid(seeds, e.pressures, e.temperatures, e.k_global, e.k_local, e.md(snapshots=bench.snapshots),
                 random_baseline=random, seed=offset + REPEAT_SEED_STRIDE * rep, bias_scale=e.bias_scale)
            for rep in range(bench.repeats)]
    stored = read(path, ":") if path.exists() else []
    if log.exists():
        done = marked(log)["repeats"]
    else:
        tags = {a.info.get("trajectory") for a in stored} - {None}
        done = sum(any(job.name in tags for job in jobs) for jobs in reps) if tags else len(reps) * bool(stored)
    todo = [job for jobs in reps[done:] for job in jobs]
    if not todo and path.exists():
        return stored
    if stored and not grow:
        raise ungrown(path, f"benchmark.repeats {bench.repeats}", f"repeats {done}")
    say(f"benchmark: {name} pool, {len(todo)} trajectories" + (f" added to the {len(stored)} stored structures "
                                                               f"(repeats {done} → {bench.repeats})" * bool(stored)))
    state = GlobalEntropy("atom", campaign.filter.eps, settings)
    folder = out / f"{name}-md"
    if stored:
        remember_pool(out.parent, name, stored)  # the holdout grows by the new structures only
        if not (folder / "state.npz").exists():  # the stored pool, explored elsewhere: bias against it
            state.add(fingerprint_for(state, stored))
    Explorer(driver, state, folder, min_gain=-np.inf, workers=e.workers,
             driver_params=campaign.driver_params).run(todo)
    names = {job.name for job in todo}
    new = [a for a in read(folder / "snapshots.extxyz", ":") if a.info.get("trajectory") in names]
    pool = write_pool(path, stored + new)
    mark(log, {"repeats": bench.repeats})
    if stored:
        (out.parent / "labels.done").unlink(missing_ok=True)
        say(f"benchmark: {name} pool grown from {len(stored)} to {len(pool)} structures")
    return pool


def anchor_pool(campaign: Campaign, seeds: dict[str, Atoms], out: Path, driver: str, say: Say,
                grow: bool = True) -> list[Atoms]:
    """The stored anchors out/anchor.extxyz: each phase relaxed by `driver` at each pressure, its strains and
    enough thermal snapshots that the mixed pool's largest set holds its anchor share after a draw's subsample.
    A rerun with a larger N that the stored anchors cannot serve (fewer than that share needs) appends the thermal
    snapshots it lacks (new seeds; labels.done removed); a stored pool cut to fewer thermal snapshots per phase and
    pressure (a subset folder) that still holds enough is used as it is."""
    e, bench = campaign.explore, campaign.benchmark
    path = out / "anchor.extxyz"
    groups = len(seeds) * len(e.pressures)
    need = int(np.ceil(bench.anchor_fraction * max(bench.sizes) / DRAW_SHARE - 1e-9))  # anchors (no float excess)
    thermal = max(2, int(np.ceil(need / groups)) - len(ANCHOR_STRAINS) - 1)
    stored = read(path, ":") if path.exists() else []
    have = sum(a.info.get("kind") == "thermal" for a in stored) // groups
    if stored and (have >= thermal or len(stored) >= need):
        return stored
    if stored and not grow:
        raise ungrown(path, f"N = {max(bench.sizes)}", f"{len(stored)} anchors, {have} thermal per phase and "
                      f"pressure; {need} anchors need {thermal}")
    say(f"benchmark: anchors ({thermal - have} thermal snapshots per phase and pressure"
        + (f" added to the {len(stored)} stored)" if stored else ")"))
    more = anchors(seeds, driver, e.pressures, strains=() if stored else ANCHOR_STRAINS, thermal=thermal - have,
                   relaxed=not stored, seed=campaign.seed + 100_000 * have, driver_params=campaign.driver_params,
                   slab_cell=e.slab_cell)
    pool = write_pool(path, stored + more)
    if stored:
        (out.parent / "labels.done").unlink(missing_ok=True)
    return pool


def write_pool(path: Path, structures: list[Atoms]) -> list[Atoms]:
    """Write `structures` to the extxyz file `path` and return them as read back. A pool's content hashes key
    its labels, and a later run reads the stored file, whose positions carry 8 decimals: a structure hashed
    before it was written can round across a 10^-5 Å step there and lose its label (one anchor of 102 did).
    The file is replaced whole (a killed run leaves the old pool, not half of a new one)."""
    write_extxyz(path, structures)
    return read(path, ":")


def ungrown(path: Path, asked: str, stored: str) -> ValueError:
    """The error of a run without the oracle whose campaign asks for more than the stored pool `path` holds."""
    return ValueError(f"{path}: the campaign's {asked} asks for more structures than this stored pool holds "
                      f"({stored}), and new structures need the oracle's labels: run `dael benchmark` with the "
                      "oracle to grow the pools, or ask for what is stored")


def read_pool(path: Path) -> list[Atoms]:
    """The structures of a stored pool file; none for an empty one (benchmark.transfer_labels 0)."""
    return read(path, ":") if path.stat().st_size else []


def spread(structures: list[Atoms], count: int, seed: int) -> list[Atoms]:
    """`count` of `structures` (all when fewer), taken round-robin over their (phase, pressure, temperature)
    groups in a seeded order: a subset that keeps every condition."""
    groups: dict[tuple, list[Atoms]] = {}
    for atoms in structures:
        info = atoms.info
        groups.setdefault((info.get("phase"), info.get("pressure_GPa"), info.get("temperature_K")), []).append(atoms)
    rng = np.random.default_rng([seed, 77])
    queues = [[group[i] for i in rng.permutation(len(group))] for group in groups.values()]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    out: list[Atoms] = []
    while len(out) < count and any(queues):
        out += [q.pop(0) for q in queues if q][: count - len(out)]
    return out


def plain_md(campaign: Campaign, driver: str, phases: dict[str, Atoms], pressures: list[float],
              temperatures: list[float], snapshots: int, seed: int, folder: Path, settings,
              repeats: int = 1) -> list[Atoms]:
    """Snapshots of plain NVT MD (random steps) with `driver` of `phases` at every pressure (GPa) × temperature
    (K), `repeats` trajectories each, seeds offset by `seed` (+ 1000 per repeat) from the campaign's; run
    (resumably) in `folder`."""
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


def label_pools(campaign: Campaign, pools: dict[str, list], folder: Path, say: Say) -> dict[str, list]:
    """Label every pool with the campaign's oracle (resumable); returns the labelled structures per pool."""
    lab = campaign.label
    db = Dataset(folder / "labels.db")
    spec = oracle_spec(lab.oracle, lab.params)
    done = marked(folder / "labels.done")
    if done is None or not set(pools) <= set(done.get("pools", [])):  # a pool added since: label it too
        for name, structures in pools.items():
            db.add(structures, oracle=spec, campaign=campaign.name, source=POOL_SOURCES[name])
        say(f"benchmark: labelling {len(db.pending(spec))} structures with {lab.oracle}")
        label_dataset(db, lab.oracle, lab.params, **label_options(lab))
        mark_labelled(folder, db, set(pools) | set((done or {}).get("pools", [])))
    rows = db.labelled(sources=SOURCES)
    return {name: with_tags(pools[name], rows) for name in pools}


def mark_labelled(folder: Path, db: Dataset, pools) -> None:
    """Write folder/labels.done, the marker that the named pools are labelled (what `check_stored` and `dael
    benchmark --no-oracle` read): how many structures are labelled and which pools."""
    mark(folder / "labels.done", {"labelled": len(db.labelled(sources=SOURCES)), "pools": sorted(pools)})


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
    largest (`step` beyond a largest value <= 0, e.g. a single pressure of 0 GPa; dael.check.settings.beyond, the
    step of the models' robustness check)."""
    grid_values = sorted(set(float(v) for v in values))
    return [0.5 * (a + b) for a, b in zip(grid_values, grid_values[1:], strict=False)] + [beyond(grid_values, step)]


def with_tags(pool: list[Atoms], labelled: list[Atoms]) -> list[Atoms]:
    """The labelled rows of the structures in `pool` (matched by the rows' content hash: two pools may share
    a dataset source), with the pool structure's tags (trajectory, step, phase, temperature, energies, ...;
    rows written before the dataset kept them lack them); the dataset's own keys (status, source, ...) win."""
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
