"""Overlap-matrix fingerprints (OMFP) of Zhu et al., J. Chem. Phys. 144, 034203 (2016), as libfp computes
its per-atom ("long") fingerprint, with exact analytic gradients; computed in Rust (docs/method.md §1).

Per atom: the eigenvalues (descending, zero-padded to `natx`, or `4·natx` for 'sp') of the amplitude-
weighted Gaussian-orbital overlap matrix of every atom image within `cutoff` Å, the atom itself included.
Per configuration: the mean of its atoms' fingerprints.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from dael import _core
from dael.numeric.batch import Batch
from dael.util.checks import require_memory
from dael.util.threads import resolve


@dataclass(frozen=True)
class FingerprintSettings:
    """What defines a fingerprint: sphere radius (Å), padded length (atoms per sphere), orbitals.
    Fingerprints made with different settings are not comparable and are never mixed."""

    cutoff: float = 5.0
    natx: int = 50
    orbital: str = "s"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.cutoff) and self.cutoff > 0):
            raise ValueError(f"cutoff must be a positive distance in Å; got {self.cutoff}")
        if int(self.natx) < 1:
            raise ValueError(f"natx must be a positive number of atoms; got {self.natx}")
        if self.orbital not in ("s", "sp"):
            raise ValueError(f"orbital must be 's' or 'sp'; got {self.orbital!r}")

    @property
    def length(self) -> int:
        """Fingerprint length: natx for 's', 4·natx for 'sp'."""
        return self.natx * (1 if self.orbital == "s" else 4)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of a batch of S structures with N atoms in all; L = settings.length.

    values:  per='atom' (N, L); per='config' (S, L).
    offsets: (S + 1,) atom offsets of the structures; sphere: (N,) atoms per sphere (centre included).
    With gradients, per='atom': sparse ∂values[c]/∂r[a] as pairs (E, 2) of batch-global (c, a) indices
    and grad (E, 3, L) in 1/Å; per='config': grad (N, 3, L) = ∂X_k/∂r_a for each atom a of structure k.
    With stress, strain: per='atom' (N, 6, L), per='config' (S, 6, L): derivative with respect to a
    homogeneous strain ε in ASE's convention (Voigt xx yy zz yz xz xy; by the symmetric strain tensor, so
    σ = (1/V)·∂E/∂ε as ASE's stress; libfp's shear entries are twice these).
    """

    values: np.ndarray
    settings: FingerprintSettings
    per: str
    offsets: np.ndarray
    sphere: np.ndarray
    pairs: np.ndarray | None = None
    grad: np.ndarray | None = None
    strain: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        """The values, so that numpy takes fingerprints as an array: np.asarray(fps) is fps.values, (N, L)
        per atom or (S, L) per configuration (note len(fps) counts structures, S)."""
        values = self.values if dtype is None else self.values.astype(dtype, copy=False)
        return values.copy() if copy else values

    def of(self, k: int) -> np.ndarray:
        """Fingerprints of structure k: (n_k, L) per atom, (L,) per configuration."""
        return self.values[k] if self.per == "config" else self.values[self.offsets[k] : self.offsets[k + 1]]

    def dense_grad(self, k: int) -> np.ndarray:
        """Gradient of structure k as a dense array: per='atom' (n, n, 3, L) = ∂fp[i, m]/∂r[j, xyz]
        (libfp's `dfp` layout); per='config' (n, 3, L)."""
        if self.grad is None:
            raise ValueError("no gradients: compute fingerprints with gradients=True")
        lo, hi = self.offsets[k], self.offsets[k + 1]
        if self.per == "config":
            return self.grad[lo:hi]
        n = hi - lo
        rows = (self.pairs[:, 0] >= lo) & (self.pairs[:, 0] < hi)
        out = np.zeros((n, n, 3, self.settings.length))
        out[self.pairs[rows, 0] - lo, self.pairs[rows, 1] - lo] = self.grad[rows]
        return out


    def largest_spheres(self) -> np.ndarray:
        """The largest sphere (atoms, centre included) of each structure, (S,) int64."""
        counts = np.diff(self.offsets)
        out = np.zeros(len(counts), dtype=np.int64)
        full = counts > 0
        if full.any():
            out[full] = np.maximum.reduceat(self.sphere, self.offsets[:-1][full])
        return out

    def truncated(self, natx: int) -> Fingerprints:
        """The values only, cut (or zero-padded) to `natx`: exact for every structure whose largest sphere
        holds at most natx atoms (its eigenvalues beyond natx are the zero padding); the others' values are
        cut short (see largest_spheres)."""
        settings = FingerprintSettings(self.settings.cutoff, int(natx), self.settings.orbital)
        values = np.zeros((len(self.values), settings.length))
        keep = min(settings.length, self.settings.length)
        values[:, :keep] = self.values[:, :keep]
        return Fingerprints(values, settings, self.per, self.offsets, self.sphere)

    def subset(self, lo: int, hi: int) -> Fingerprints:
        """Structures lo..hi (exclusive) as a batch of their own."""
        a, b = int(self.offsets[lo]), int(self.offsets[hi])
        offsets = self.offsets[lo : hi + 1] - a
        values = self.values[lo:hi] if self.per == "config" else self.values[a:b]
        pairs = grad = strain = None
        if self.grad is not None and self.per == "atom":
            rows = slice(*np.searchsorted(self.pairs[:, 0], [a, b]))
            pairs, grad = self.pairs[rows] - a, self.grad[rows]
        elif self.grad is not None:
            grad = self.grad[a:b]
        if self.strain is not None:
            strain = self.strain[lo:hi] if self.per == "config" else self.strain[a:b]
        return Fingerprints(values, self.settings, self.per, offsets, self.sphere[a:b], pairs, grad, strain)

    def chain(self, k: int, dfp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chain rule for a scalar F of structure k's per-atom fingerprints: dfp = ∂F/∂fp (n_k, L) →
        (∂F/∂r (n_k, 3) in units of F per Å, ∂F/∂ε (6,) Voigt; zeros without stress)."""
        if self.per != "atom" or self.grad is None:
            raise ValueError("the chain rule needs per-atom fingerprints computed with gradients=True")
        lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
        length = self.settings.length
        dfp = np.ascontiguousarray(dfp, dtype=np.float64)
        if dfp.shape != (hi - lo, length):
            raise ValueError(f"dfp must have shape {(hi - lo, length)} for structure {k}; got {dfp.shape}")
        rows = slice(*np.searchsorted(self.pairs[:, 0], [lo, hi]))
        strain = self.strain[lo:hi] if self.strain is not None else np.zeros(0)
        pairs = np.ascontiguousarray(self.pairs[rows] - lo)
        dr, de = _core.chain(dfp, length, pairs, self.grad[rows], strain)
        return np.frombuffer(dr, dtype=np.float64).reshape(-1, 3), np.frombuffer(de, dtype=np.float64)


class NatxError(ValueError):
    """A sphere holds more atoms than natx: `needed` is the smallest natx that fits the batch."""

    def __init__(self, message: str, needed: int):
        super().__init__(message)
        self.needed = needed


def fingerprint(
    structures: Atoms | Sequence[Atoms],
    cutoff: float = 5.0,
    natx: int | None = 50,
    orbital: str = "s",
    per: str = "atom",
    gradients: bool = False,
    stress: bool = False,
    threads: int | None = None,
) -> Fingerprints:
    """OMFP fingerprints of one `ase.Atoms` or a list of them (one native call, GIL released).

    cutoff: sphere radius in Å. natx: most atoms a sphere may hold (centre included); a larger sphere is an
    error (NatxError, a ValueError) that names it; None sizes natx to the largest sphere of this batch (then
    fingerprints of different batches may differ in length). orbital: 's' or 'sp'. per: 'atom' or 'config' (mean over
    the structure's atoms). gradients: ∂fp/∂r; stress: the strain derivative (needs gradients).
    See `Fingerprints` for shapes and units.
    """
    if per not in ("atom", "config"):
        raise ValueError(f"per must be 'atom' or 'config'; got {per!r}")
    if stress and not gradients:
        raise ValueError("stress=True needs gradients=True (the strain derivative is built from them)")
    FingerprintSettings(cutoff, natx or 1, orbital)  # validates the arguments
    batch = structures if isinstance(structures, Batch) else Batch.from_atoms(structures)
    check_memory(batch, cutoff, natx, orbital, gradients, resolve(threads))
    try:
        raw = _core.fingerprints(batch.positions, batch.numbers, batch.cells, batch.pbc, batch.offsets,
                                 float(cutoff), int(natx or 0), orbital, gradients, stress, resolve(threads))
    except ValueError as exc:
        needed = re.search(r"raise natx to at least (\d+)", str(exc))
        if needed:
            raise NatxError(str(exc), int(needed[1])) from None
        raise
    settings = FingerprintSettings(float(cutoff), int(raw["natx"]), orbital)
    length = settings.length
    fp = np.frombuffer(raw["fp"], dtype=np.float64).reshape(-1, length)
    sphere = np.frombuffer(raw["sphere"], dtype=np.int64)
    pairs = grad = strain = None
    if gradients:
        pairs = np.frombuffer(raw["pairs"], dtype=np.int64).reshape(-1, 2)
        grad = np.frombuffer(raw["grad"], dtype=np.float64).reshape(-1, 3, length)
    if stress:
        strain = np.frombuffer(raw["strain"], dtype=np.float64).reshape(-1, 6, length)
    if per == "atom":
        return Fingerprints(fp, settings, per, batch.offsets, sphere, pairs, grad, strain)
    return _per_config(fp, settings, batch.offsets, sphere, pairs, grad, strain)


def check_memory(batch: Batch, cutoff: float, natx: int | None, orbital: str, gradients: bool,
                 threads: int) -> None:
    """Refuse a fingerprint call whose estimated memory exceeds what is available (an allocation that
    fails aborts the process). Atoms per sphere are estimated from each periodic cell's density
    (ρ·4/3·π·cutoff³), or all its atoms for a molecule; the neighbour pairs (40 B each), the output
    (and gradients) and each thread's overlap matrix and eigenvectors are counted."""
    n = np.diff(batch.offsets).astype(np.float64)
    if not len(n):
        return
    volume = np.abs(np.linalg.det(batch.cells)) if len(n) > 1 else np.array([abs(_det3(batch.cells[0]))])
    periodic = batch.pbc.any(axis=1) & (volume > 0)
    density = n / np.where(periodic, volume, 1.0)
    sphere = np.where(periodic, density * (4 / 3 * np.pi * float(cutoff) ** 3) + 1, n)
    largest = float(sphere.max())
    width = 1 if orbital == "s" else 4
    length = width * float(natx or largest)
    pairs = float(n @ sphere)
    need = 40 * pairs + 8 * length * (float(n.sum()) + (3 * pairs if gradients else 0))
    need += 8 * 3 * (width * largest) ** 2 * max(threads, 1)
    require_memory(need, f"fingerprints of {len(n)} structures (cutoff {cutoff} Å, about {largest:.3g} atoms "
                         f"per sphere, natx {natx or 'sized to the largest sphere'})",
                   "lower natx or the cutoff, or give fewer structures at a time (--chunk)")


def _det3(m: np.ndarray) -> float:
    """Determinant of one 3×3 matrix (np.linalg.det costs 10 µs, a per-MD-step overhead)."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def _per_config(fp, settings, offsets, sphere, pairs, grad, strain) -> Fingerprints:
    """Average per-atom fingerprints (and their derivatives) over each structure."""
    counts = np.diff(offsets)
    if np.any(counts == 0):
        empty = int(np.argmin(counts))
        raise ValueError(f"structure {empty} has no atoms, so it has no per-configuration fingerprint")
    owner = np.repeat(np.arange(len(counts)), counts)
    values = np.add.reduceat(fp, offsets[:-1], axis=0) / counts[:, None]
    if grad is not None:
        dense = np.zeros((len(fp), 3, settings.length))
        np.add.at(dense, pairs[:, 1], grad)
        grad = dense / counts[owner][:, None, None]
    if strain is not None:
        strain = np.add.reduceat(strain, offsets[:-1], axis=0) / counts[:, None, None]
    return Fingerprints(values, settings, "config", offsets, sphere, None, grad, strain)
