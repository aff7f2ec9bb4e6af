"""The librarian at scale: greedy selection, kNN entropy and end-to-end pool screening, with anchors.

What it measures (one run, one machine; all inputs real OMFP fingerprints, s orbital, cutoff 5 Å,
natx 50, of rattled (σ ∈ [0.02, 0.3] Å) and strained (3 %) 64-atom Si diamond cells):

1. Selection: 800 of N = 1e6 single-row candidates (d = 50; each row an atomic fingerprint) by lazy
   greedy ΔH (no minimum gain, so exactly 800 are taken), timed; and on 1e4 candidates exact vs lazy
   greedy (800 picks): overlap of the picks and the final log det.
2. kNN entropy (Kozachenko–Leonenko, k = 1) of the N vectors: dael (exact kd-tree, Rust) vs scipy
   cKDTree (exact, workers = threads) on the same vectors, equal to 1e-9; QUESTS' entropy (a kernel
   estimate, O(N²), numba) on the largest subset it finishes in about `--quests-seconds`, with dael's
   kNN on that subset for the ratio.
3. End-to-end screening (`dael.selection.screen.Screen`, stream mode, atom mode, budget never reached): an extxyz
   pool of `--pool` 64-atom structures read by ASE, fingerprinted and judged in chunks; structures/s,
   the time extrapolated to 1,000,000 structures, and the peak resident memory (measured first).

Targets (issue 5): (1) < 2 min; (2) < 5 min for 1e6 vectors; (3) < 1 h for 1e6 × 64 atoms on 2 cores,
< 4 GiB. Usage: python benches/entropy.py [--n 1000000] [--pool 4000] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.io import write

import dael
from dael.numeric.entropy import GlobalEntropy, knn_entropy


def pool(n_structures: int, seed: int) -> list:
    """Rattled, strained 64-atom Si cells."""
    rng = np.random.default_rng(seed)
    base = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    out = []
    for _ in range(n_structures):
        a = base.copy()
        a.set_cell(a.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
        a.positions += rng.uniform(0.02, 0.3) * rng.standard_normal(a.positions.shape)
        out.append(a)
    return out


def timed(f):
    t = time.perf_counter()
    value = f()
    return value, time.perf_counter() - t


def vectors(n: int, threads: int) -> np.ndarray:
    """n atomic fingerprints (natx 50) of rattled 64-atom Si cells."""
    structures = pool(-(-n // 64), seed=0)
    fps, t = timed(lambda: dael.fingerprint(structures, cutoff=5.0, natx=50, threads=threads))
    print(f"fingerprints of {len(structures):,} structures ({len(fps.values):,} atoms) in {t:.1f} s")
    return np.ascontiguousarray(fps.values[:n])


def selection(x: np.ndarray, threads: int) -> None:
    print(f"\n1. Greedy selection of 800 by ΔH (config-style single-row candidates, d = {x.shape[1]})")
    cands = [x[i : i + 1] for i in range(len(x))]
    state = GlobalEntropy("config")
    (picks, gains), t = timed(lambda: state.greedy(cands, 800, min_gain=-np.inf, lazy=True, threads=threads))
    print(f"   lazy greedy, N = {len(x):,}: {len(picks)} picks in {t:.1f} s (target < 120 s); "
          f"log det {state.logdet:.3f} nats")
    small = cands[:10_000]
    exact, lazy = GlobalEntropy("config"), GlobalEntropy("config")
    (pe, _), te = timed(lambda: exact.greedy(small, 800, min_gain=-np.inf, threads=threads))
    (pl, _), tl = timed(lambda: lazy.greedy(small, 800, min_gain=-np.inf, lazy=True, threads=threads))
    common = len(set(pe.tolist()) & set(pl.tolist()))
    print(f"   N = 10,000: exact {te:.1f} s, lazy {tl:.1f} s ({te / tl:.0f}x); picks in common "
          f"{common}/{len(pe)}; log det exact {exact.logdet:.6f}, lazy {lazy.logdet:.6f} "
          f"(difference {lazy.logdet - exact.logdet:+.2e} nats)")


def knn(x: np.ndarray, threads: int, quests_seconds: float) -> None:
    from scipy.spatial import cKDTree

    print(f"\n2. Kozachenko–Leonenko kNN entropy (k = 1), N = {len(x):,}, d = {x.shape[1]}")
    h, t_dael = timed(lambda: knn_entropy(x, 1, threads=threads))
    r_ref, t_ckd = timed(lambda: cKDTree(x).query(x, k=2, workers=threads)[0][:, 1])
    r_dael = dael.numeric.entropy.knn_distances(x, 1, threads=threads)
    assert np.allclose(r_dael, r_ref, rtol=1e-9, atol=1e-12), "kNN distances differ from cKDTree"
    print(f"   dael {t_dael:.1f} s (H = {h:.4f} nats; target < 300 s), scipy cKDTree {t_ckd:.1f} s "
          f"-> {t_ckd / t_dael:.1f}x")
    try:
        from quests.entropy import perfect_entropy
    except ImportError:
        print("   QUESTS not installed: skipped")
        return
    n = 2000
    perfect_entropy(x[:200])  # numba compile
    while True:
        hq, tq = timed(lambda n=n: perfect_entropy(x[:n]))
        if tq > quests_seconds / 4 or 2 * n > len(x):
            break
        n *= 2
    hd, td = timed(lambda: knn_entropy(x[:n], 1, threads=threads))
    hours = tq * (len(x) / n) ** 2 / 3600
    print(f"   QUESTS perfect_entropy (kernel, h = 0.015) on N = {n:,}: {tq:.2f} s (H = {hq:.4f}); "
          f"dael kNN on the same {td:.3f} s (H = {hd:.4f}) -> {tq / td:.0f}x; "
          f"QUESTS is O(N²): ~{hours:.1f} h at N = {len(x):,}")


def screening(n_pool: int, threads: int) -> None:
    from dael.selection.screen import Screen

    print(f"\n3. End-to-end screening of an extxyz pool of {n_pool:,} 64-atom Si structures "
          "(stream, atom mode)")
    structures = pool(n_pool, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pool.extxyz"
        write(path, structures)
        del structures
        settings = dael.FingerprintSettings(5.0, 50, "s")
        dael.set_num_threads(threads)
        screen = Screen([path], Path(tmp) / "kept.extxyz", GlobalEntropy("atom", settings=settings), settings,
                        budget=10**9, min_gain=0.01, chunk=500)
        result, t = timed(screen.run)
    rate = result.seen / t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"   {result.seen:,} structures in {t:.1f} s = {rate:,.0f} structures/s "
          f"({64 * rate:,.0f} atoms/s); "
          f"kept {len(result.picks):,}; 1,000,000 structures -> {1e6 / rate / 3600:.2f} h (target < 1 h); "
          f"peak memory of this process {peak:.2f} GiB (target < 4 GiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="vectors for selection and kNN")
    ap.add_argument("--pool", type=int, default=4000, help="structures in the screening pool")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quests-seconds", type=float, default=30.0)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.n, args.pool, args.quests_seconds = 40_000, 400, 4.0
    print(f"dael {dael.__version__}, {args.threads} threads, {os.cpu_count()} cores")
    screening(args.pool, args.threads)  # first, so that the peak memory is the screening's own
    x = vectors(args.n, args.threads)
    selection(x, args.threads)
    knn(x, args.threads, args.quests_seconds)


if __name__ == "__main__":
    main()
