"""The benchmark's evaluation sets: the in-distribution holdouts of the entropy and random-MD pools (whole,
inside the energy window, and what the streaming filter accepts: the paper's holdout), and the test and transfer
sets split by kind and by condition."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms

from dael.benchmark.report import CONDITION
from dael.campaign.config import Campaign
from dael.data.dataset import TRAINING_SOURCES, structure_hash
from dael.numeric.fingerprint import Fingerprints
from dael.selection.stream import filter_rows
from dael.selection.window import in_window
from dael.util.files import write_atomic

HELD = ("entropy", "random")
"""The pools with an in-distribution holdout."""


def holdout_indices(data: dict[str, list], seed: int, folder: Path | None = None) -> dict[str, np.ndarray]:
    """The in-distribution holdout: 10 % (at least one) of the entropy and of the random pool, as indices into
    `data`'s labelled lists. A pool's holdout is its structures with the smallest seed-keyed digest of their
    content hash, so it depends on that pool alone (not on how many structures of another pool the oracle
    labelled). With `folder` it is kept in folder/holdouts.json (as content hashes, with those of the structures
    it was drawn from) and read back on reruns; structures a pool gained since (more repeats explored) add 10 %
    of themselves, so that no training set drawn before holds a held-out structure. A folder with training sets
    (sets.json) but no holdouts.json was written by an older dael: one ValueError says how to redraw its sets."""
    path = None if folder is None else Path(folder) / "holdouts.json"
    if path is not None and path.exists():
        held = json.loads(path.read_text())
    elif path is not None and (path.parent / "sets.json").exists():
        raise ValueError(f"{path.parent}: its training sets were drawn by an older dael against a holdout it "
                         "did not keep; remove sets.json and models/ from the folder and rerun the same `dael "
                         "benchmark` command to redraw and retrain them on the stored, labelled pools")
    else:
        held = {name: [] for name in HELD} | {"seen": {name: [] for name in HELD}}
    seen = held.setdefault("seen", {})
    grown = not set(HELD) <= set(seen)
    for name in HELD:
        # a holdout kept before "seen" was: drawn from the structures labelled now (remember_pool, called before
        # a pool grows, records the stored ones in time)
        seen.setdefault(name, [a.info["hash"] for a in data[name]])
        known = set(seen[name])
        new = [a for a in data[name] if a.info["hash"] not in known]
        if new:
            held[name] += [new[i].info["hash"] for i in _smallest_digests(new, seed)]
            seen[name] += [a.info["hash"] for a in new]
            grown = True
    if path is not None and (grown or not path.exists()):
        write_atomic(path, json.dumps(held).encode())
    sets = {name: set(held[name]) for name in HELD}
    return {name: np.array([i for i, a in enumerate(data[name]) if a.info["hash"] in sets[name]], dtype=np.int64)
            for name in HELD}


def remember_pool(folder: Path, name: str, structures: list[Atoms]) -> None:
    """Before pool `name` of a benchmark folder grows: record in its holdouts.json, if one was kept before
    holdouts.json listed the structures each holdout was drawn from, that `structures` (the pool as stored,
    content hashes) are those, so that holdout_indices treats only the added ones as new."""
    path = Path(folder) / "holdouts.json"
    if not path.exists():
        return
    held = json.loads(path.read_text())
    if name in held.get("seen", {}):
        return
    held.setdefault("seen", {})[name] = [structure_hash(a) for a in structures]
    write_atomic(path, json.dumps(held).encode())


def _holdout_size(n: int) -> int:
    return max(1, n // 10)


def _smallest_digests(structures: list[Atoms], seed: int) -> np.ndarray:
    """Indices of the 10 % (at least one) of `structures` whose sha256(seed, content hash) is smallest."""
    digests = [hashlib.sha256(f"{seed}:{a.info['hash']}".encode()).hexdigest() for a in structures]
    return np.sort(np.argsort(digests)[: _holdout_size(len(structures))])


def accepted_by_filter(campaign: Campaign, structures: list[Atoms], fps: Fingerprints) -> np.ndarray:
    """Mask of the biased-MD snapshots (per-atom fingerprints `fps`) the campaign's streaming filter accepts
    (window, dual modes, min_gain) when they arrive in the pool's order, the order the explorer produced them:
    the dataset a campaign on this exploration would label, every rejected snapshot being close to what it
    already holds."""
    f = campaign.filter
    rows, taken = filter_rows(structures, fps, np.arange(len(structures)), campaign.explore.window, f.mode,
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
    trained = {a.info["hash"] for name in TRAINING_SOURCES for a in data.get(name, [])}
    return sum(a.info["hash"] in trained for a in data["test"])


def probe_kind(info: dict) -> str | None:
    """'equilibrium' or 'strain' for a test set's probe of a relaxed phase, None for a thermal MD snapshot."""
    if info.get("temperature_K") is not None:
        return None
    return "equilibrium" if info.get("kind") == "equilibrium" else "strain"


def by_test_kind(pool: list[Atoms], labelled: list[Atoms]) -> dict[str, list[Atoms]]:
    """The labelled test structures by kind: 'test-<T>K' (thermal MD at T), 'test-strain' (0.92/1.08 strains of
    the relaxed phases) and 'test-equilibrium' (the relaxed phases, rattled), matched to the unlabelled pool by
    content hash."""
    return _grouped(pool, labelled, lambda info: f"test-{probe_kind(info)}" if probe_kind(info)
                    else f"test-{float(info['temperature_K']):.0f}K")


def condition_name(info: dict) -> str:
    """The per-condition set a structure's info places it in: 'test@<phase> <P> GPa <T> K' (an MD snapshot of that
    phase at that pressure and temperature), 'test@<phase> <P> GPa strains' or '... equilibrium' (a probe)."""
    kind = probe_kind(info)
    return (f"{CONDITION}{info.get('phase')} {float(info['pressure_GPa']):g} GPa "
            + (f"{float(info['temperature_K']):.0f} K" if kind is None else "strains" if kind == "strain" else kind))


def by_condition(pool: list[Atoms], labelled: list[Atoms]) -> dict[str, list[Atoms]]:
    """The labelled test structures by condition (condition_name): where on the grid a model errs."""
    return _grouped(pool, labelled, condition_name)


def _grouped(pool: list[Atoms], labelled: list[Atoms], name: Callable[[dict], str]) -> dict[str, list[Atoms]]:
    """The labelled structures of `pool` (matched by content hash) grouped by name(pool structure's info)."""
    names = {structure_hash(atoms): name(atoms.info) for atoms in pool}
    groups: dict[str, list[Atoms]] = {}
    for atoms in labelled:
        key = names.get(structure_hash(atoms))
        if key is not None:
            groups.setdefault(key, []).append(atoms)
    return dict(sorted(groups.items()))


INDTEST_HOT = 5
"""Hot-MD snapshots per phase in the broad indtest (the authors' count)."""


def broad_indtest(pool: list[Atoms], labelled: list[Atoms], seed: int) -> list[Atoms]:
    """The authors' "broad indtest", built from the test set (never trained on): every strain probe (0.92 and
    1.08 of each relaxed phase at each pressure: high stress, no thermal noise) and, per phase, INDTEST_HOT
    snapshots of its MD at the hottest temperature (high forces), taken round-robin over the pressures in a
    seeded order. Matched to the unlabelled pool by content hash."""
    hottest = max((float(a.info["temperature_K"]) for a in pool if a.info.get("temperature_K") is not None),
                  default=None)

    def group(info: dict) -> str:
        kind = probe_kind(info)
        if kind is not None:
            return kind
        hot = float(info["temperature_K"]) == hottest
        return f"hot\t{info.get('phase')}\t{float(info['pressure_GPa']):g}" if hot else "other"

    groups = _grouped(pool, labelled, group)
    rng = np.random.default_rng([seed, 31])
    out = list(groups.get("strain", []))
    for phase in sorted({name.split("\t")[1] for name in groups if name.startswith("hot")}):
        by_pressure = [[groups[name][i] for i in rng.permutation(len(groups[name]))] for name in groups
                       if name.startswith(f"hot\t{phase}\t")]
        picked: list[Atoms] = []
        while len(picked) < INDTEST_HOT and any(by_pressure):
            for members in by_pressure:
                if members and len(picked) < INDTEST_HOT:
                    picked.append(members.pop(0))
        out += picked
    return out
