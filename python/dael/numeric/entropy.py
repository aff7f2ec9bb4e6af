"""Entropies of fingerprint sets (docs/method.md §2–4), computed in Rust.

- `GlobalEntropy`: the dataset-aware entropy H = log det Σ, Σ = population covariance of the dataset's
  fingerprints + εI, kept as running sums (N, mean, scatter); exact gains ΔH of candidates; saved and
  loaded with the fingerprint settings so that fingerprints of other settings are refused.
  mode 'atom': every atomic fingerprint is a sample (disordered systems);
  mode 'config': one sample per structure, the mean of its atomic fingerprints (ordered systems).
- `knn_entropy`: the Kozachenko–Leonenko nearest-neighbour entropy (nats) of a point set.
- `local_entropy`: the entropy of one configuration's own atomic fingerprints, with its gradient.
All entropies are in nats; fingerprints are dimensionless.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.special import digamma, gammaln

from dael import _core
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings
from dael.util.checks import LARGEST, require_memory
from dael.util.files import savez_atomic
from dael.util.threads import resolve

MIN_GAIN = 0.0
"""Default smallest gain ΔH (nats) of the streaming filter everywhere (`dael run`, `dael explore`, `dael filter`):
ΔH > 0 means farther from the dataset than its own samples whatever its size, while a fixed 0.01 nats asks for
ever larger outliers as the dataset grows (docs/method.md §4)."""

MODES = ("atom", "config")
FLOOR = 1e-8
"""Smallest nearest-neighbour distance in fingerprint space used in a logarithm (as the authors clamp)."""


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be 'atom' (per-atom samples) or 'config' (per-structure); got {mode!r}")
    return mode


def as_rows(x: np.ndarray, what: str = "fingerprints") -> np.ndarray:
    """A C-contiguous float64 (n, d) array of finite values below LARGEST in magnitude, or a clear error."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty (n, d) array; got shape {x.shape}")
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        raise ValueError(f"{what} hold a non-finite value at row {bad[0][0]}, column {bad[0][1]}")
    huge = np.argwhere(np.abs(x) >= LARGEST)
    if len(huge):
        r, c = huge[0]
        raise ValueError(f"{what} hold {x[r, c]:.3g} at row {r}, column {c}: magnitudes must stay below "
                         f"{LARGEST:g} (fingerprints are of order 1-100)")
    return x


def _covariance(d: int, eps: float, n: float = 0.0, mean: np.ndarray | None = None,
                scatter: np.ndarray | None = None) -> _core.Covariance:
    """A native covariance state of dimension d (its d×d scatter and Cholesky copies must fit in memory)."""
    require_memory(4 * 8 * float(d) ** 2, f"an entropy state of fingerprint dimension {d}",
                   "use a smaller natx (the dimension is natx, or 4 × natx for 'sp')")
    return _core.Covariance(d, eps, n, mean, scatter)


class GlobalEntropy:
    """Dataset entropy H = log det(Σ + εI) of the fingerprints seen so far, with exact candidate gains.

    mode: 'atom' or 'config' (see the module docstring); eps: diagonal shift ε (default 1e-3, docs/method.md §3);
    settings: the fingerprint settings of every block given (recorded, checked by `check`).
    A block x is one structure's per-atom fingerprints, shape (n_atoms, d); in 'config' mode it is
    averaged to one sample. The dimension d is fixed by the first block (or settings.length).
    """

    def __init__(self, mode: str = "atom", eps: float = 1e-3, settings: FingerprintSettings | None = None):
        self.mode = check_mode(mode)
        self.eps = float(eps)
        if not (np.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be positive (it keeps Σ invertible); got {eps}")
        self.settings = settings
        self._cov: _core.Covariance | None = None
        if settings is not None:
            self._cov = _covariance(settings.length, self.eps)

    # -- state ---------------------------------------------------------------------------------------
    @property
    def dim(self) -> int | None:
        """Fingerprint dimension d (None before the first block)."""
        return None if self._cov is None else self._cov.d

    @property
    def n(self) -> int:
        """Samples in the state: atoms ('atom' mode) or structures ('config' mode)."""
        return 0 if self._cov is None else int(round(self._cov.n))

    @property
    def logdet(self) -> float:
        """H = log det Σ in nats (d·ln ε for an empty state; 0 before the dimension is known)."""
        return 0.0 if self._cov is None else self._cov.logdet()

    @property
    def mean(self) -> np.ndarray:
        return np.frombuffer(self._state().mean, dtype=np.float64).copy()

    @property
    def covariance(self) -> np.ndarray:
        """Σ = scatter/N + εI, (d, d)."""
        cov = self._state()
        scatter = np.frombuffer(cov.scatter, dtype=np.float64).reshape(cov.d, cov.d)
        return scatter / max(cov.n, 1.0) * (cov.n > 0) + self.eps * np.eye(cov.d)

    def copy(self) -> GlobalEntropy:
        other = GlobalEntropy(self.mode, self.eps, self.settings)
        other._cov = None if self._cov is None else self._cov.copy()
        return other

    def check(self, fps: Fingerprints) -> None:
        """Refuse fingerprints made with settings other than the state's (records them if none yet)."""
        if self.settings is None:
            if self.dim not in (None, fps.settings.length):
                raise ValueError(f"fingerprints of length {fps.settings.length} do not fit dim {self.dim}")
            self.settings = fps.settings
        elif fps.settings != self.settings:
            raise ValueError(
                f"fingerprints made with {fps.settings} cannot join a state built with {self.settings}; "
                "recompute them with the state's settings (GlobalEntropy.settings)"
            )

    def _state(self, d: int | None = None) -> _core.Covariance:
        if self._cov is None:
            if d is None:
                raise ValueError("the state is empty and has no dimension yet: add a block first")
            self._cov = _covariance(d, self.eps)
        if d is not None and d != self._cov.d:
            raise ValueError(f"fingerprints of dimension {d} do not match the state's dimension {self._cov.d}"
                             " (use the state's fingerprint settings)")
        return self._cov

    def samples(self, x: np.ndarray) -> np.ndarray:
        """The samples a block contributes: its rows ('atom') or their mean ('config')."""
        x = as_rows(x)
        return x if self.mode == "atom" else x.mean(axis=0, keepdims=True)

    def blocks(self, xs: Fingerprints | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Stack candidate blocks into (rows, offsets) of samples (one row per structure in 'config')."""
        if isinstance(xs, Fingerprints):
            self.check(xs)
            if xs.per == "config":
                if self.mode == "atom":
                    raise ValueError("mode 'atom' needs per-atom fingerprints (per='atom')")
                rows = as_rows(xs.values)
                return rows, np.arange(len(rows) + 1, dtype=np.int64)
            if self.mode == "config":
                counts = np.diff(xs.offsets)
                if np.any(counts == 0):
                    raise ValueError(f"structure {int(np.argmin(counts))} has no atoms")
                rows = np.add.reduceat(as_rows(xs.values), xs.offsets[:-1], axis=0) / counts[:, None]
                return np.ascontiguousarray(rows), np.arange(len(rows) + 1, dtype=np.int64)
            return as_rows(xs.values), np.asarray(xs.offsets, dtype=np.int64)
        parts = [self.samples(x) for x in xs]
        if not parts:
            return np.zeros((0, self.dim or 1)), np.zeros(1, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        return np.ascontiguousarray(np.concatenate(parts)), offsets

    # -- entropy -------------------------------------------------------------------------------------
    def gain(self, x: np.ndarray) -> float:
        """Exact ΔH (nats) of adding one structure's block x (n_atoms, d)."""
        return float(self.gains([x])[0])

    def gains(self, xs: Fingerprints | Sequence[np.ndarray], threads: int | None = None) -> np.ndarray:
        """Exact ΔH of each candidate against the current state (candidates do not see each other)."""
        rows, offsets = self.blocks(xs)
        if len(offsets) == 1:
            return np.zeros(0)
        cov = self._state(rows.shape[1])
        return np.frombuffer(cov.gains(rows, offsets, resolve(threads)), dtype=np.float64).copy()

    def add(self, x: np.ndarray | Fingerprints) -> None:
        """Add one block (n_atoms, d), or every structure of a Fingerprints batch, to the state."""
        if isinstance(x, Fingerprints):
            rows, _ = self.blocks(x)
        else:
            rows = self.samples(x)
        self._state(rows.shape[1]).add(rows)

    def logdet_with(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """H of the state with block x (n_atoms, d) added, and ∂H/∂x (n_atoms, d): in 'atom' mode
        (2/N') Σ'⁻¹(x_j − μ') per row; in 'config' mode the mean's derivative shared by its n rows."""
        x = as_rows(x)
        h, g = self._state(x.shape[1]).logdet_with(self.samples(x))
        g = np.frombuffer(g, dtype=np.float64).reshape(-1, x.shape[1])
        if self.mode == "config":
            g = np.repeat(g / len(x), len(x), axis=0)
        return float(h), g

    def stream(self, xs: Fingerprints | Sequence[np.ndarray], min_gain: float = 0.01,
               budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Streaming filter in order: a candidate with ΔH > min_gain joins the state at once (the authors'
        rule; the first samples of an empty state are always taken). Returns (gains, accepted mask)."""
        rows, offsets = self.blocks(xs)
        if len(offsets) == 1:
            return np.zeros(0), np.zeros(0, dtype=bool)
        cov = self._state(rows.shape[1])
        g, a = cov.stream(rows, offsets, float(min_gain), int(budget if budget is not None else len(offsets)))
        return np.frombuffer(g, dtype=np.float64).copy(), np.frombuffer(a, dtype=np.int64).astype(bool)

    def greedy(self, xs: Fingerprints | Sequence[np.ndarray], budget: int, min_gain: float = 0.01,
               lazy: bool = False, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Greedy selection (adds the picks to the state): repeatedly the candidate of largest ΔH, until
        `budget` are taken or no gain exceeds min_gain. Returns (candidate indices in pick order, gains).

        lazy=True (lazy greedy, Minoux 1978) re-evaluates only the top of priority queues of upper bounds
        on each candidate's gain, so its picks equal exact greedy's: for single-row candidates the bound is
        provable (see rust/src/entropy.rs), for blocks it relies on the block part shrinking as N grows,
        which held in every comparison (tests: 60 picks on 10⁴ candidates; benches/entropy.py: 800 on 10⁴)."""
        rows, offsets = self.blocks(xs)
        if len(offsets) == 1 or budget <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cov = self._state(rows.shape[1])
        picks, gains = cov.greedy(rows, offsets, int(budget), float(min_gain), bool(lazy), resolve(threads))
        return np.frombuffer(picks, dtype=np.int64).copy(), np.frombuffer(gains, dtype=np.float64).copy()

    def grow(self, natx: int) -> None:
        """Lengthen the fingerprints this state holds to `natx` atoms per sphere (at least its own): the new
        components are the zero padding every stored fingerprint had, so no stored sample, distance or gain
        changes (H shifts by the new dimensions' (d' − d)·ln ε)."""
        if self.settings is None:
            raise ValueError("a state without fingerprint settings has no natx to grow")
        if natx <= self.settings.natx:
            return
        settings = FingerprintSettings(self.settings.cutoff, int(natx), self.settings.orbital)
        if self._cov is not None:
            old = self.arrays()
            d, d2 = self._cov.d, settings.length
            mean, scatter = np.zeros(d2), np.zeros((d2, d2))
            mean[:d], scatter[:d, :d] = old["mean"], old["scatter"]
            self._cov = _covariance(d2, self.eps, float(old["n"]), mean, scatter)
        self.settings = settings

    # -- persistence ---------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The running sums: n (samples), mean (d,), scatter (d, d)."""
        cov = self._state()
        return {"n": np.float64(cov.n), "mean": np.frombuffer(cov.mean, dtype=np.float64).copy(),
                "scatter": np.frombuffer(cov.scatter, dtype=np.float64).reshape(cov.d, cov.d).copy()}

    def restored(self, n: float, mean: np.ndarray, scatter: np.ndarray) -> GlobalEntropy:
        """A copy of this state (mode, ε, settings) holding the given running sums."""
        state = GlobalEntropy(self.mode, self.eps, self.settings)
        mean, scatter = (np.ascontiguousarray(a, dtype=np.float64) for a in (mean, scatter))
        state._cov = _covariance(len(mean), self.eps, float(n), mean, scatter)
        return state

    def save(self, path: str | os.PathLike) -> None:
        """Write the state (mode, ε, N, mean, scatter, fingerprint settings) atomically to an .npz file."""
        meta = {"mode": self.mode, "eps": self.eps,
                "settings": None if self.settings is None else self.settings.to_dict()}
        savez_atomic(Path(path), meta=json.dumps(meta), **self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> GlobalEntropy:
        """Read a state written by `save`; a truncated, foreign or inconsistent file is a ValueError."""
        try:
            with np.load(path) as z:
                meta = json.loads(str(z["meta"]))
                n, mean, scatter = float(z["n"]), z["mean"], z["scatter"]
            settings = FingerprintSettings(**meta["settings"]) if meta["settings"] else None
            return cls(meta["mode"], meta["eps"], settings).restored(n, mean, scatter)
        except (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a dael entropy state, or a damaged one ({e}); rebuild it") from e

    def __getstate__(self) -> dict:
        return {"mode": self.mode, "eps": self.eps, "settings": self.settings,
                "arrays": None if self._cov is None else self.arrays()}

    def __setstate__(self, saved: dict) -> None:
        self.__init__(saved["mode"], saved["eps"])
        self.settings = saved["settings"]
        if saved["arrays"] is not None:
            self._cov = self.restored(**saved["arrays"])._cov

    def __repr__(self) -> str:
        return (f"GlobalEntropy(mode={self.mode!r}, eps={self.eps}, n={self.n}, dim={self.dim}, "
                f"logdet={self.logdet:.6g})")


def knn_entropy(x: np.ndarray, k: int = 1, threads: int | None = None) -> float:
    """Kozachenko–Leonenko entropy (nats) of the rows of x (N, d):
    H = ψ(N) − ψ(k) + ln V_d + (d/N) Σ_i ln r_i,k, with V_d the volume of the unit d-ball and r_i,k the
    exact Euclidean distance from row i to its k-th nearest other row (floored at 1e-8, so duplicates
    stay finite)."""
    r = knn_distances(x, k, threads)
    n, d = len(r), np.shape(x)[-1]
    log_ball = d / 2 * np.log(np.pi) - gammaln(d / 2 + 1)
    return float(digamma(n) - digamma(k) + log_ball + d * np.mean(np.log(np.maximum(r, FLOOR))))


def knn_distances(x: np.ndarray, k: int = 1, threads: int | None = None) -> np.ndarray:
    """Exact distance from each row of x (N, d) to its k-th nearest other row, (N,)."""
    x = as_rows(x)
    n, d = x.shape
    if not 1 <= int(k) < n:
        raise ValueError(f"k must be between 1 and N - 1 = {n - 1}; got {k}")
    return np.frombuffer(_core.knn_distances(x, n, d, int(k), resolve(threads)), dtype=np.float64).copy()


def local_entropy(fp: np.ndarray) -> float:
    """Local entropy of one configuration (docs/method.md §2), nats:
    S = (1/n) Σ_i ln(n·δ_i), δ_i = distance from fp_i to the nearest other atomic fingerprint (≥ 1e-8).
    fp: (n_atoms, L) per-atom fingerprints of one structure, n_atoms ≥ 2."""
    fp = as_rows(fp)
    s, _ = _core.local_entropy(fp, fp.shape[0], fp.shape[1], FLOOR)
    return float(s)


def local_entropy_gradient(fps: Fingerprints, k: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    """S_loc of structure k of a per-atom batch computed with gradients, with ∂S/∂r (n, 3) in 1/Å and
    the strain derivative ∂S/∂ε (6,) Voigt (zeros unless computed with stress=True). The nearest
    neighbour in fingerprint space is held fixed (S is piecewise smooth)."""
    fp = as_rows(fps.of(k))
    s, dfp = _core.local_entropy(fp, fp.shape[0], fp.shape[1], FLOOR)
    dr, de = fps.chain(k, np.frombuffer(dfp, dtype=np.float64).reshape(fp.shape))
    return float(s), dr, de
