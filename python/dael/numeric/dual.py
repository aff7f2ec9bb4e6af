"""Dual covariance modes (docs/method.md §3): each snapshot is judged in the mode that fits it.

An ordered snapshot (a crystal near its lattice sites) is one sample: its mean fingerprint joins the
per-configuration covariance. A disordered one (a melt, an amorphous or a hot, distorted cell) is judged
atom by atom in the per-atom covariance. `disorder` decides which: the median over atoms of the distance
from an atom's fingerprint to the nearest other atom's fingerprint in the same cell, relative to the
length of its own. In a crystal every atom has a twin on an equivalent site (distance → 0 at 0 K); in a
melt no two environments agree. Measured with the reference oracle (8-atom cells, 300-step NVT, 5 Å):
diamond/β-Sn Si 0.004–0.009 at 300 K, 0.014–0.045 at 2000–3000 K; B1 NaCl 0.007–0.014 at 300 K,
0.03–0.054 at 3000 K; diamond/graphite/lonsdaleite C ≤ 0.028 up to 3000 K. `DISORDER` = 0.03 sends the
hottest cells (and melts) to the per-atom mode.

`DualEntropy` keeps both states of one dataset. A snapshot's gain is taken in its own mode; an accepted
snapshot joins both, so each state always describes the whole dataset.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings
from dael.util.files import savez_atomic

DISORDER = 0.03
"""Relative fingerprint distance (see the module docstring) above which a snapshot counts as disordered."""


def disorder(fp: np.ndarray) -> float:
    """Median over atoms of min_{j≠i} |fp_i − fp_j| / |fp_i| for one structure's fingerprints (n_atoms, L);
    0 for a structure of one atom."""
    fp = np.asarray(fp, dtype=float)
    if len(fp) < 2:
        return 0.0
    d = np.linalg.norm(fp[:, None, :] - fp[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1) / np.maximum(np.linalg.norm(fp, axis=1), 1e-300)))


def _blocks(fps: Fingerprints | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each structure's per-atom fingerprints (n_atoms, L)."""
    return [fps.of(k) for k in range(len(fps))] if isinstance(fps, Fingerprints) else list(fps)


def modes(fps: Fingerprints | Sequence[np.ndarray], threshold: float = DISORDER) -> np.ndarray:
    """'atom' (disordered) or 'config' (ordered) for each structure of a per-atom batch (or list of blocks)."""
    return np.array(["atom" if disorder(x) > threshold else "config" for x in _blocks(fps)])


class DualEntropy:
    """The dataset in both modes (per-atom and per-configuration covariances, same ε and settings).

    `stream` judges each candidate in its own mode (`modes`); `atom` is the state the MD bias uses."""

    mode = "dual"

    def __init__(self, eps: float = 1e-3, settings: FingerprintSettings | None = None,
                 threshold: float = DISORDER):
        self.atom = GlobalEntropy("atom", eps, settings)
        self.config = GlobalEntropy("config", eps, settings)
        self.eps, self.threshold = float(eps), float(threshold)

    @property
    def settings(self) -> FingerprintSettings | None:
        return self.atom.settings

    @settings.setter
    def settings(self, value: FingerprintSettings | None) -> None:
        self.atom.settings = self.config.settings = value

    @property
    def n(self) -> int:
        """Structures in the dataset (samples of the per-configuration state)."""
        return self.config.n

    @property
    def logdet(self) -> float:
        """H of the per-atom state (nats)."""
        return self.atom.logdet

    def copy(self) -> DualEntropy:
        other = DualEntropy(self.eps, None, self.threshold)
        other.atom, other.config = self.atom.copy(), self.config.copy()
        return other

    def grow(self, natx: int) -> None:
        """Lengthen both states' fingerprints to `natx` (GlobalEntropy.grow)."""
        self.atom.grow(natx)
        self.config.grow(natx)

    def _align(self) -> None:
        """Both states at the longer natx (the MD bias grows the per-atom state alone)."""
        if self.atom.settings is not None and self.config.settings is not None:
            self.grow(max(self.atom.settings.natx, self.config.settings.natx))

    def add(self, fps: Fingerprints | Sequence[np.ndarray]) -> None:
        """Add structures to both states."""
        self._align()
        if isinstance(fps, Fingerprints):
            self.atom.add(fps)
            self.config.add(fps)
            return
        for x in fps:
            self.atom.add(x)
            self.config.add(x)

    def stream(self, fps: Fingerprints | Sequence[np.ndarray], min_gain: float = 0.01,
               budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Streaming filter in order over a per-atom batch (or list of blocks), each candidate judged in its own
        mode (ΔH > min_gain joins both states at once). Returns (gains in the candidate's mode, accepted mask);
        `last_modes` holds the modes."""
        self._align()
        if isinstance(fps, Fingerprints):
            for state in (self.atom, self.config):
                state.check(fps)
        blocks = _blocks(fps)
        self.last_modes = modes(blocks, self.threshold)
        gains, accepted = np.zeros(len(blocks)), np.zeros(len(blocks), dtype=bool)
        left = len(blocks) if budget is None else int(budget)
        start = 0
        while start < len(blocks) and left > 0:
            # a run of candidates of one mode streams through that state; its picks then join the other
            mode = self.last_modes[start]
            stop = start + 1
            while stop < len(blocks) and self.last_modes[stop] == mode:
                stop += 1
            judge, other = (self.atom, self.config) if mode == "atom" else (self.config, self.atom)
            g, a = judge.stream(blocks[start:stop], min_gain, left)
            gains[start:stop], accepted[start:stop] = g, a
            for k in np.flatnonzero(a):
                other.add(blocks[start + k])
            left -= int(a.sum())
            start = stop
        return gains, accepted

    def save(self, path: str | os.PathLike) -> None:
        """Both states in one .npz (atomic)."""
        meta = {"mode": "dual", "eps": self.eps, "threshold": self.threshold,
                "settings": None if self.settings is None else self.settings.to_dict()}
        arrays = {f"{name}_{k}": v for name, state in (("atom", self.atom), ("config", self.config))
                  if state.dim is not None for k, v in state.arrays().items()}
        savez_atomic(Path(path), meta=json.dumps(meta), **arrays)

    def restore(self, z) -> DualEntropy:
        """A copy holding the states saved in the open .npz `z` (written by `save`)."""
        out = self.copy()
        for name in ("atom", "config"):
            if f"{name}_n" in z:
                state = getattr(out, name)
                setattr(out, name, state.restored(z[f"{name}_n"], z[f"{name}_mean"], z[f"{name}_scatter"]))
        return out

    def __repr__(self) -> str:
        return f"DualEntropy(eps={self.eps}, structures={self.n}, atoms={self.atom.n}, logdet={self.logdet:.6g})"


def new_state(mode: str, eps: float = 1e-3, settings: FingerprintSettings | None = None) -> GlobalEntropy | DualEntropy:
    """An empty dataset state: 'atom', 'config' or 'dual'."""
    if mode == "dual":
        return DualEntropy(eps, settings)
    return GlobalEntropy(mode, eps, settings)


def load_state(path: str | os.PathLike) -> GlobalEntropy | DualEntropy:
    """Read a state written by `GlobalEntropy.save` or `DualEntropy.save`."""
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta["mode"] == "dual":
                settings = FingerprintSettings(**meta["settings"]) if meta["settings"] else None
                return DualEntropy(meta["eps"], settings, meta["threshold"]).restore(z)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a dael entropy state, or a damaged one ({e})") from e
    return GlobalEntropy.load(path)
