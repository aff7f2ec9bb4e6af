"""A condition-balanced subset of a benchmark folder's pools (experiments.md section 31 (ii), cut to one session's
DFT labels): every structure of the subset is in the full pools, so what the subset's run labels counts there too
(`--merge` copies the labels back).

- entropy pool: every other snapshot of each trajectory (step order, the first kept);
- random-MD pool: the same thinning per trajectory;
- anchors: per phase × pressure the relaxed cell, the ±5 % strains and the first thermal snapshot;
- test set: every equilibrium and strain probe, plus the middle MD snapshot of each trajectory.

`--whole entropy,random,anchor` keeps the named pools whole (section 31 (ii) at N = 100: the full training pools,
the N = 50 test subset). `--repeats R` first cuts the MD pools of a folder whose pools grew since (more
`benchmark.repeats`) back to the snapshots of their first R repeats, by the trajectories' seeds; `--anchors K`
cuts the anchor pool back to its first K anchors (a grown pool appends its new anchors: data/si-gpaw's N = 200
folder is the first 54 of the three-repeat pool's 102).

    python benches/experiments/pool_subset.py FULL_FOLDER SUBSET_FOLDER           # write the subset folder
    python benches/experiments/pool_subset.py FULL_FOLDER SUBSET_FOLDER --merge   # labels back into FULL
    python benches/experiments/pool_subset.py FULL_FOLDER OUT --repeats 1 --whole entropy,random,anchor,test
    python benches/experiments/pool_subset.py FULL OUT --repeats 2 --anchors 54 --whole entropy,random,anchor,test

A folder none of whose rows is pending gets its labels.done marker, so `dael benchmark --no-oracle` can retrain
and re-evaluate it without the oracle.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

from ase import Atoms
from ase.db import connect
from ase.io import read, write

from dael.benchmark.pools import REPEAT_SEED_STRIDE, STORED, mark_labelled
from dael.data.dataset import RESULT_KEYS, Dataset, structure_hash

POOLS = ("entropy", "random", "anchor", "test")
"""The pools a subset cuts (the transfer set is left empty)."""
ANCHOR_KINDS = ("relaxed", "strain 0.95", "strain 1.05", "thermal")
"""The anchors a subset keeps, once per phase × pressure."""


def by_trajectory(pool: list[Atoms], pick: Callable[[list[Atoms]], list[Atoms]]) -> list[Atoms]:
    """`pick` applied to each trajectory's snapshots in step order (phase, pressure, temperature, trajectory)."""
    groups: dict[tuple, list[Atoms]] = {}
    for atoms in pool:
        i = atoms.info
        groups.setdefault((i.get("phase"), i.get("pressure_GPa"), i.get("temperature_K"), i.get("trajectory")),
                          []).append(atoms)
    return [a for g in groups.values() for a in pick(sorted(g, key=lambda a: a.info["step"]))]


def first_repeats(pool: list[Atoms], repeats: int) -> list[Atoms]:
    """The snapshots of an MD pool's first `repeats` repeats: its trajectories' seeds (the `_s<seed>` that ends
    their names) step by REPEAT_SEED_STRIDE from one repeat to the next."""
    names = [str(a.info.get("trajectory")) for a in pool]
    if bad := [name for name in names if not name.rpartition("_s")[2].isdigit()]:
        raise SystemExit(f"--repeats: trajectory {bad[0]!r} does not end in _s<seed>; only pools explored by "
                         "`dael benchmark` can be cut by repeat")
    seeds = [int(name.rpartition("_s")[2]) for name in names]
    low = min(seeds, default=0)
    return [a for a, seed in zip(pool, seeds, strict=True) if round((seed - low) / REPEAT_SEED_STRIDE) < repeats]


def subset(pools: dict[str, list[Atoms]], whole: tuple[str, ...] = ()) -> dict[str, list[Atoms]]:
    """The subset of each pool (module docstring); the pools named in `whole` are kept as they are."""
    seen: set[tuple] = set()
    anchors = []
    for atoms in pools["anchor"]:
        key = (atoms.info["phase"], atoms.info["pressure_GPa"], atoms.info["kind"])
        if atoms.info["kind"] in ANCHOR_KINDS and key not in seen:
            seen.add(key)
            anchors.append(atoms)
    probes = [a for a in pools["test"] if a.info.get("kind")]
    md = by_trajectory([a for a in pools["test"] if not a.info.get("kind")], lambda g: [g[len(g) // 2]])
    cut = {"entropy": by_trajectory(pools["entropy"], lambda g: g[::2]),
           "random": by_trajectory(pools["random"], lambda g: g[::2]),
           "anchor": anchors, "test": probes + md}
    return {name: pools[name] if name in whole else picked for name, picked in cut.items()}


def write_subset(full: Path, out: Path, whole: tuple[str, ...] = (), repeats: int | None = None,
                 anchors: int | None = None) -> None:
    """The subset folder: pools/*.extxyz (an empty transfer set, the same MD starts) and labels.db holding the
    full folder's rows of the subset (labelled or pending); the pools named in `whole` are copied whole, the
    MD pools cut to their first `repeats` repeats and the anchors to the first `anchors` first."""
    if out.exists():
        raise SystemExit(f"{out} exists: choose a new folder (or --merge to copy its labels back)")
    pools = {name: read(full / "pools" / f"{name}.extxyz", ":") for name in POOLS}
    if repeats is not None:
        pools |= {name: first_repeats(pools[name], repeats) for name in ("entropy", "random")}
    if anchors is not None:
        if anchors > len(pools["anchor"]):
            raise SystemExit(f"--anchors {anchors}: {full / 'pools' / 'anchor.extxyz'} holds {len(pools['anchor'])}")
        pools["anchor"] = pools["anchor"][:anchors]
    pools = subset(pools, whole)
    (out / "pools").mkdir(parents=True)
    for name, structures in pools.items():
        write(out / "pools" / f"{name}.extxyz", structures, format="extxyz")
    (out / "pools" / "transfer.extxyz").write_bytes(b"")
    shutil.copy(full / "pools" / "md-starts.extxyz", out / "pools" / "md-starts.extxyz")
    wanted = {structure_hash(a) for structures in pools.values() for a in structures}
    shutil.copy(full / "labels.db", out / "labels.db")
    db = connect(out / "labels.db")
    db.delete([row.id for row in db.select() if row.key_value_pairs.get("hash") not in wanted])
    print(", ".join(f"{name} {len(s)}" for name, s in pools.items()), "|", mark_if_labelled(out))


def mark_if_labelled(folder: Path) -> str:
    """Write folder/labels.done (what `dael benchmark --no-oracle` checks) once no row of folder/labels.db is
    pending; the counts in words."""
    db = Dataset(folder / "labels.db")
    counts = db.counts()
    if not counts.get("pending"):
        mark_labelled(folder, db, STORED)
    return f"labelled {counts.get('labeled', 0)}, pending {counts.get('pending', 0)}, failed {counts.get('failed', 0)}"


def merge(full: Path, out: Path) -> None:
    """Record the subset's labels (energy, forces, stress, provenance, seconds) on the full folder's pending rows
    of the same structures."""
    src, dst = connect(out / "labels.db"), Dataset(full / "labels.db")
    pending = {row.get("hash"): row.id for row in dst.db.select(status="pending")}
    copied = 0
    with dst.transaction():
        for row in src.select(status="labeled"):
            if row.get("hash") in pending:
                results = {key: row.get(key) for key in (*RESULT_KEYS, "versions")}
                dst.record_result(pending[row.get("hash")], row.toatoms(), results, seconds=row.get("seconds", 0.0),
                                  attempts=row.get("attempts", 1))
                copied += 1
    print(f"{copied} labels recorded in {full / 'labels.db'}: {mark_if_labelled(full)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("full", type=Path)
    parser.add_argument("subset", type=Path)
    parser.add_argument("--merge", action="store_true", help="copy the subset's labels back into the full folder")
    parser.add_argument("--whole", default="", help=f"pools to keep whole, comma-separated ({','.join(POOLS)})")
    parser.add_argument("--repeats", type=int, help="keep the first REPEATS MD repeats of the entropy and random "
                        "pools (a folder whose pools grew since)")
    parser.add_argument("--anchors", type=int, help="keep the first ANCHORS anchors (a grown anchor pool)")
    args = parser.parse_args()
    for flag, value in (("--repeats", args.repeats), ("--anchors", args.anchors)):
        if value is not None and value < 1:
            raise SystemExit(f"{flag} {value}: give 1 or more")
    whole = tuple(name for name in args.whole.split(",") if name)
    if unknown := set(whole) - set(POOLS):
        raise SystemExit(f"--whole {args.whole}: no pool named {', '.join(sorted(unknown))} "
                         f"(choose from {', '.join(POOLS)})")
    if args.merge:
        merge(args.full, args.subset)
    else:
        write_subset(args.full, args.subset, whole, args.repeats, args.anchors)


if __name__ == "__main__":
    main()
