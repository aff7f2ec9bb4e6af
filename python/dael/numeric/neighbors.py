"""Full periodic neighbour lists with the semantics of `ase.neighborlist.neighbor_list`.

Pairs are every (i, j, S) with D = r_j - r_i + S·cell, |D| < cutoff, except i == j with S == 0;
computed by cell lists in Rust (O(N), GIL released, rayon over structures or atoms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from dael import _core
from dael.numeric.batch import Batch
from dael.util.threads import resolve

_SHAPES = {"i": (np.int64, ()), "j": (np.int64, ()), "S": (np.int64, (3,)), "d": (np.float64, ()),
           "D": (np.float64, (3,))}


def _check(quantities: str, cutoff: float) -> float:
    bad = set(quantities) - set(_SHAPES)
    if not quantities or bad:
        raise ValueError(f"quantities must be letters of 'ijSdD'; got {quantities!r}")
    if isinstance(cutoff, dict | list | tuple | np.ndarray):
        raise ValueError("cutoff must be one distance in Å; per-element cutoffs are not supported")
    cutoff = float(cutoff)
    if not np.isfinite(cutoff) or cutoff < 0:
        raise ValueError(f"cutoff must be a finite, non-negative distance in Å; got {cutoff}")
    return cutoff


@dataclass(frozen=True)
class NeighborLists:
    """Pairs of a batch, concatenated: arrays `i`, `j` (indices within each structure), `S` (n, 3),
    `d` (n,) Å, `D` (n, 3) Å (absent quantities are None) and `offsets` (S + 1,) into the pairs."""

    i: np.ndarray
    j: np.ndarray
    S: np.ndarray | None
    d: np.ndarray | None
    D: np.ndarray | None
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, k: int) -> dict[str, np.ndarray]:
        """The pairs of structure k as a dict of the computed quantities."""
        lo, hi = self.offsets[k], self.offsets[k + 1]
        return {q: getattr(self, q)[lo:hi] for q in "ijSdD" if getattr(self, q) is not None}


def _native(batch: Batch, cutoff: float, quantities: str, threads: int | None) -> dict:
    """The native call: a dict of raw buffers (see `_core.neighbor_lists`)."""
    return _core.neighbor_lists(batch.positions, batch.cells, batch.pbc, batch.offsets, cutoff, quantities,
                                resolve(threads))


def _array(raw: dict, q: str) -> np.ndarray:
    """Quantity q of a native result as a numpy view of its buffer."""
    dtype, tail = _SHAPES[q]
    arr = np.frombuffer(raw[q], dtype=dtype)
    return arr.reshape(-1, *tail) if tail else arr


def neighbor_lists(structures: Atoms | Sequence[Atoms], cutoff: float, quantities: str = "ijSdD",
                   threads: int | None = None) -> NeighborLists:
    """Neighbour lists of many structures in one native call (cutoff in Å)."""
    cutoff = _check(quantities, cutoff)
    batch = structures if isinstance(structures, Batch) else Batch.from_atoms(structures)
    raw = _native(batch, cutoff, quantities, threads)
    out = {q: _array(raw, q) if (q in quantities or q in "ij") else None for q in _SHAPES}
    offsets = np.zeros(len(batch) + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(raw["counts"], dtype=np.int64), out=offsets[1:])
    return NeighborLists(**out, offsets=offsets)


def neighbor_list(atoms: Atoms, cutoff: float, quantities: str = "ijSdD",
                  threads: int | None = None) -> np.ndarray | tuple[np.ndarray, ...]:
    """The pairs of `atoms` within `cutoff` Å, as `ase.neighborlist.neighbor_list(quantities, atoms, cutoff)`
    computes them, with dael's argument order (structure first; `ase_neighbor_list` takes ASE's).

    Returns the arrays named by `quantities` in that order (one array for one letter):
    i, j (n,) int64; S (n, 3) int64 cell shifts; d (n,) Å; D (n, 3) Å.
    """
    if not isinstance(atoms, Atoms):
        raise TypeError(f"atoms must be an ase.Atoms, not {type(atoms).__name__}")
    raw = _native(Batch.from_atoms(atoms), _check(quantities, cutoff), quantities, threads)
    result = tuple(_array(raw, q) for q in quantities)
    return result[0] if len(result) == 1 else result


def ase_neighbor_list(quantities: str, a: Atoms, cutoff: float, self_interaction: bool = False,
                      max_nbins: float | None = None) -> np.ndarray | tuple[np.ndarray, ...]:
    """Drop-in for `ase.neighborlist.neighbor_list(quantities, a, cutoff, self_interaction=False)` (ASE's and
    vesin's argument order): the same arrays (see `neighbor_list`; cutoff one distance in Å).
    self_interaction=True also lists each atom with itself (S = 0, d = 0), as ASE does; max_nbins is
    accepted and ignored (the cell lists size themselves)."""
    if not self_interaction:
        return neighbor_list(a, cutoff, quantities)
    want = quantities if "i" in quantities else quantities + "i"
    got = neighbor_list(a, cutoff, want)
    got = dict(zip(want, [got] if len(want) == 1 else got, strict=True))
    n = len(a)
    own = {"i": np.arange(n), "j": np.arange(n), "S": np.zeros((n, 3), np.int64), "d": np.zeros(n),
           "D": np.zeros((n, 3))}
    at = np.searchsorted(got["i"], np.arange(n))  # pairs are sorted by i: each atom's own pair leads its run
    merged = tuple(np.insert(got[q], at, own[q], axis=0).astype(got[q].dtype) for q in quantities)
    return merged[0] if len(merged) == 1 else merged
