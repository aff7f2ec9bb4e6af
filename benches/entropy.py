"""The librarian at scale: greedy selection, kNN entropy and end-to-end pool screening, with anchors.

What it measures (one run, one machine; all inputs real OMFP fingerprints, s orbital, cutoff 5 Å,
natx 50, of rattled (σ ∈ [0.02, 0.3] Å) and strained (3 %) 64-atom Si diamond cells):

1. Selection: `--picks` (800) of N = 1e6 single-row candidates (d = 50; each row an atomic fingerprint) by
   lazy greedy ΔH (no minimum gain, so exactly that many are taken), timed; and on `--compare` (1e4)
   candidates exact vs lazy greedy (as many picks): overlap of the picks and the final log det.
2. kNN entropy (Kozachenko–Leonenko, k = 1) of the N vectors: dael (exact kd-tree, Rust) vs scipy
   cKDTree (exact, workers = threads) on the same vectors, equal to 1e-9; QUESTS' entropy (a kernel
   estimate, O(N²), numba) on the largest subset it finishes in about `--quests-seconds`, with dael's
   kNN on that subset for the ratio.
3. End-to-end screening (`dael.selection.screen.Screen`, stream mode, atom mode, budget never reached): an extxyz
   pool of `--pool` 64-atom structures read by ASE, fingerprinted and judged in chunks; structures/s,
   the time extrapolated to 1,000,000 structures, and the peak resident memory (measured first).

Targets (issue 5): (1) < 2 min; (2) < 5 min for 1e6 vectors; (3) < 1 h for 1e6 × 64 atoms on 2 cores,
< 4 GiB. Every thread pool (dael, scipy, QUESTS' numba, BLAS) gets `--threads` threads.
Usage: python benches/entropy.py [--n 1000000] [--pool 4000] [--picks 800] [--compare 10000] [--threads 2]
[--quick]
"""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.io import write
from harness import BenchParser, header, measure, perturbed, ratio, set_threads, usable_cores

import dael
from dael.numeric.entropy import GlobalEntropy, knn_entropy


def pool(n_structures: int, seed: int) -> list:
    """Rattled (σ drawn from 0.02-0.3 Å), strained (3 %) 64-atom Si cells."""
    rng = np.random.default_rng(seed)
    base = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    return [perturbed(base, rng, strain=0.03, rattle=(0.02, 0.3)) for _ in range(n_structures)]


def vectors(n: int, threads: int) -> np.ndarray:
    """n atomic fingerprints (natx 50) of rattled 64-atom Si cells."""
    structures = pool(-(-n // 64), seed=0)
    fps = measure(lambda: dael.fingerprint(structures, cutoff=5.0, natx=50, threads=threads))
    print(f"fingerprints of {len(structures):,} structures ({len(fps.value.values):,} atoms) in {fps.best:.1f} s")
    return np.ascontiguousarray(fps.value.values[:n])


def selection(x: np.ndarray, threads: int, picks: int, compare: int) -> None:
    """Lazy greedy ΔH selection of `picks` of all rows, and exact vs lazy on the first `compare` rows."""
    print(f"\n1. Greedy selection of {picks} by ΔH (config-style single-row candidates, d = {x.shape[1]})")
    cands = [x[i : i + 1] for i in range(len(x))]
    state = GlobalEntropy("config")
    run = measure(lambda: state.greedy(cands, picks, min_gain=-np.inf, lazy=True, threads=threads))
    print(f"   lazy greedy, N = {len(x):,}: {len(run.value[0])} picks in {run.best:.1f} s (target < 120 s for 800 "
          f"of 10⁶); log det {state.logdet:.3f} nats")
    small = cands[:compare]
    exact, lazy = GlobalEntropy("config"), GlobalEntropy("config")
    te = measure(lambda: exact.greedy(small, picks, min_gain=-np.inf, threads=threads))
    tl = measure(lambda: lazy.greedy(small, picks, min_gain=-np.inf, lazy=True, threads=threads))
    pe, pl = te.value[0], tl.value[0]
    common = len(set(pe.tolist()) & set(pl.tolist()))
    print(f"   N = {len(small):,}: exact {te.best:.1f} s, lazy {tl.best:.1f} s (lazy / exact "
          f"{ratio(te.best, tl.best, 0)}); picks in common {common}/{len(pe)}; log det exact {exact.logdet:.6f}, "
          f"lazy {lazy.logdet:.6f} (difference {lazy.logdet - exact.logdet:+.2e} nats)")


def knn(x: np.ndarray, threads: int, quests_seconds: float) -> None:
    """dael's exact kNN entropy against scipy's cKDTree and QUESTS' kernel entropy."""
    from scipy.spatial import cKDTree

    print(f"\n2. Kozachenko–Leonenko kNN entropy (k = 1), N = {len(x):,}, d = {x.shape[1]}")
    ours = measure(lambda: knn_entropy(x, 1, threads=threads))
    anchor = measure(lambda: cKDTree(x).query(x, k=2, workers=threads)[0][:, 1])
    r_dael = dael.numeric.entropy.knn_distances(x, 1, threads=threads)
    assert np.allclose(r_dael, anchor.value, rtol=1e-9, atol=1e-12), "kNN distances differ from cKDTree"
    print(f"   dael {ours.best:.1f} s (H = {ours.value:.4f} nats; target < 300 s for 10⁶), scipy cKDTree "
          f"{anchor.best:.1f} s -> dael / scipy cKDTree {ratio(anchor.best, ours.best, 1)}")
    try:
        from quests.entropy import perfect_entropy
    except ImportError:
        print("   QUESTS not installed: skipped")
        return
    n = 2000
    perfect_entropy(x[:200])  # numba compile
    while True:
        quests = measure(lambda n=n: perfect_entropy(x[:n]))
        if quests.best > quests_seconds / 4 or 2 * n > len(x):
            break
        n *= 2
    ours = measure(lambda: knn_entropy(x[:n], 1, threads=threads))
    hours = quests.best * (len(x) / n) ** 2 / 3600
    print(f"   QUESTS perfect_entropy (kernel, h = 0.015) on N = {n:,}: {quests.best:.2f} s "
          f"(H = {quests.value:.4f}); dael kNN on the same {ours.best:.3f} s (H = {ours.value:.4f}) -> "
          f"dael / QUESTS {ratio(quests.best, ours.best, 0)}; QUESTS is O(N²): ~{hours:.1f} h at N = {len(x):,}")


def screening(n_pool: int, threads: int) -> None:
    """Structures/s and peak memory of streaming an extxyz pool through `Screen`."""
    from dael.selection.screen import Screen

    print(f"\n3. End-to-end screening of an extxyz pool of {n_pool:,} 64-atom Si structures "
          "(stream, atom mode)")
    structures = pool(n_pool, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pool.extxyz"
        write(path, structures)
        del structures
        settings = dael.FingerprintSettings(5.0, 50, "s")
        screen = Screen([path], Path(tmp) / "kept.extxyz", GlobalEntropy("atom", settings=settings), settings,
                        budget=10**9, min_gain=0.01, chunk=500)
        run = measure(screen.run)
    result = run.value
    rate = result.seen / run.best
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"   {result.seen:,} structures in {run.best:.1f} s = {rate:,.0f} structures/s "
          f"({64 * rate:,.0f} atoms/s); "
          f"kept {len(result.picks):,}; 1,000,000 structures -> {1e6 / rate / 3600:.2f} h (target < 1 h); "
          f"peak memory of this process {peak:.2f} GiB (target < 4 GiB)")


def main() -> None:
    ap = BenchParser(__doc__, n=20_000, pool=200, picks=200, compare=2_000, quests_seconds=2.0)
    ap.add_argument("--n", type=int, default=1_000_000, help="vectors for selection and kNN")
    ap.add_argument("--pool", type=int, default=4000, help="structures in the screening pool")
    ap.add_argument("--picks", type=int, default=800, help="structures the greedy selections pick")
    ap.add_argument("--compare", type=int, default=10_000, help="candidates of the exact vs lazy comparison")
    ap.add_argument("--threads", type=int, default=usable_cores())
    ap.add_argument("--quests-seconds", type=float, default=30.0)
    args = ap.parse_args()
    set_threads(args.threads)
    print(header("the librarian at scale: greedy selection, kNN entropy, pool screening",
                 tools=("scipy", "quests", "ase")))
    screening(args.pool, args.threads)  # first, so that the peak memory is the screening's own
    x = vectors(args.n, args.threads)
    selection(x, args.threads, args.picks, args.compare)
    knn(x, args.threads, args.quests_seconds)


if __name__ == "__main__":
    main()
