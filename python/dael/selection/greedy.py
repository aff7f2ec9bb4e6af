"""The librarian: choose the candidates that raise the dataset's global entropy most (docs/method.md §3).

`select` fingerprints the dataset, the candidates and (optionally) near-equilibrium anchors with one set of
fingerprint settings, then picks greedily by the exact gain ΔH = H(D ∪ c) − H(D) (nats), each pick joining
the dataset before the next gain is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from dael.numeric.entropy import GlobalEntropy, check_mode
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings, fingerprint

METHODS = ("auto", "exact", "lazy", "stream")
EXACT_UP_TO = 5000
"""method='auto' runs exact greedy up to this many candidates, lazy greedy beyond."""

Structures = Sequence[Atoms] | Fingerprints


@dataclass
class Selection:
    """What `select` chose. indices: candidate indices in pick order; gains: ΔH at each pick (nats);
    anchors / anchor_gains: the same for the anchor quota (picked first); logdet_before / logdet_after:
    H of the dataset state before and after (nats); state: the dataset state with the picks added."""

    indices: np.ndarray
    gains: np.ndarray
    anchors: np.ndarray
    anchor_gains: np.ndarray
    logdet_before: float
    logdet_after: float
    state: GlobalEntropy

    def __len__(self) -> int:
        return len(self.indices) + len(self.anchors)


def fingerprint_groups(groups: Sequence[Structures | None], settings: FingerprintSettings | None,
                       cutoff: float, natx: int | None, orbital: str,
                       threads: int | None = None) -> list[Fingerprints | None]:
    """Per-atom fingerprints of several groups of structures with one set of settings: `settings` when
    given, else (cutoff, natx, orbital) with natx=None sized to the largest sphere of all groups."""
    given = [g for g in groups if isinstance(g, Fingerprints)]
    if given:
        settings = settings or given[0].settings
        for g in given:
            if g.settings != settings:
                raise ValueError(f"fingerprints made with {g.settings} cannot be mixed with {settings}")
            if g.per != "atom":
                raise ValueError("select needs per-atom fingerprints (per='atom'); it averages them itself")
    lists = [list(g) for g in groups if g is not None and not isinstance(g, Fingerprints)]
    atoms = [a for g in lists for a in g]
    computed: Fingerprints | None = None
    if atoms:
        if settings is not None:
            cutoff, natx, orbital = settings.cutoff, settings.natx, settings.orbital
        computed = fingerprint(atoms, cutoff=cutoff, natx=natx, orbital=orbital, threads=threads)
    out: list[Fingerprints | None] = []
    start = 0
    for g in groups:
        if g is None or isinstance(g, Fingerprints):
            out.append(g)
            continue
        n = len(list(g))
        out.append(computed.subset(start, start + n))
        start += n
    return out


def select(
    candidates: Structures,
    dataset: GlobalEntropy | Structures | None = None,
    budget: int = 100,
    min_gain: float = 0.01,
    mode: str = "atom",
    anchor_fraction: float = 0.0,
    anchors: Structures | None = None,
    method: str = "auto",
    eps: float = 1e-3,
    cutoff: float = 5.0,
    natx: int | None = None,
    orbital: str = "s",
    threads: int | None = None,
) -> Selection:
    """Choose up to `budget` structures from `candidates` by global-entropy gain.

    dataset: the labelled data so far — a `GlobalEntropy` state (its mode, ε and fingerprint settings win),
    structures, or None (empty). mode: 'atom' (per-atom fingerprints as samples; disordered systems) or
    'config' (one mean fingerprint per structure; ordered). min_gain: smallest ΔH (nats) worth a label.
    anchor_fraction: share of the budget given to `anchors` (near-equilibrium structures, picked first by
    ΔH with no minimum gain), the rest to candidates. method: 'exact' greedy, 'lazy' greedy (large pools;
    see `GlobalEntropy.greedy`), 'stream' (in order, ΔH > min_gain, the authors' filter), or 'auto'
    (exact up to 5000 candidates). Fingerprints: `cutoff` Å, `natx` (None: largest sphere), `orbital`.
    Candidates may also be per-atom `Fingerprints` computed with the same settings.
    """
    check_mode(mode)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if int(budget) < 0:
        raise ValueError(f"budget must be a non-negative number of structures; got {budget}")
    if not 0.0 <= anchor_fraction <= 1.0:
        raise ValueError(f"anchor_fraction must lie in [0, 1]; got {anchor_fraction}")
    n_anchor = int(round(anchor_fraction * budget))
    if n_anchor and anchors is None:
        raise ValueError("anchor_fraction > 0 needs anchors= (near-equilibrium structures to draw them from)")
    state = dataset.copy() if isinstance(dataset, GlobalEntropy) else GlobalEntropy(mode, eps)
    data = None if isinstance(dataset, GlobalEntropy) else dataset
    groups = [data, candidates, anchors if n_anchor else None]
    if len(candidates) == 0:
        raise ValueError("no candidates to select from")
    data_fp, cand_fp, anchor_fp = fingerprint_groups(groups, state.settings, cutoff, natx, orbital, threads)
    if data_fp is not None and len(data_fp):
        state.add(data_fp)
    before = state.logdet if state.dim is not None else float("nan")
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
    anchor_picks = empty
    if n_anchor:
        anchor_picks = state.greedy(anchor_fp, n_anchor, min_gain=-np.inf, lazy=len(anchor_fp) > EXACT_UP_TO,
                                    threads=threads)
    rest = int(budget) - len(anchor_picks[0])
    if method == "stream":
        gains, accepted = state.stream(cand_fp, min_gain, rest)
        picks = (np.flatnonzero(accepted), gains[accepted])
    else:
        lazy = method == "lazy" or (method == "auto" and len(cand_fp) > EXACT_UP_TO)
        picks = state.greedy(cand_fp, rest, min_gain, lazy=lazy, threads=threads)
    if np.isnan(before):
        before = state.dim * np.log(state.eps)
    return Selection(picks[0], picks[1], anchor_picks[0], anchor_picks[1], before, state.logdet, state)
