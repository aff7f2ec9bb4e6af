"""Throughput of full periodic neighbour lists: dael vs vesin, ase.neighborlist and matscipy.

What it measures
----------------
A fixed-seed pool of N (default 2,000) 64-atom periodic structures: half Si diamond (2x2x2 cubic cells,
a = 5.43 Å), half NaCl rocksalt (2x2x2 cubic cells, a = 5.64 Å). Every structure gets its own random
3x3 strain (cell -> cell @ (I + e), e_ab ~ N(0, 0.03), not symmetrised, so the cells are triclinic) and a
Gaussian rattle whose standard deviation is drawn uniformly from 0.05-0.1 Å.

For each tool, the full (both i-j and j-i) periodic neighbour list with a 5 Å cutoff and the quantities
"ijSdD" (i, j, cell shift S, distance d, distance vector D) is computed for every structure of the pool,
starting from `ase.Atoms` objects (so reading positions/cell out of the Atoms is part of the timed work
for every tool). Throughput is reported in structures per second (higher is better), as the best of
`--repeats` timed passes after one untimed warm-up pass, for 1 thread and for 2 threads. ase (pure
Python/numpy, slow) is timed on a subset of `--ase-subset` structures and scaled to structures/s.

Two-thread numbers: dael's batched call parallelises over structures itself (rayon). For the per-call
tools, two strategies are measured and the faster one is reported: the tool's own intra-call threading
(dael `threads=2`, vesin `n_threads=2`; ase/matscipy have none) and the pool split over a 2-thread
`ThreadPoolExecutor` (one call per structure with 1 thread each; it only helps if the call releases the
GIL). If no 2-thread strategy beats the 1-thread number, the 1-thread number is reported for 2 threads
and the table says so.

Usage: python benches/neighbors.py [--n 2000] [--repeats 3] [--quick] [--cutoff 5.0] [--ase-subset 200]
"""

from __future__ import annotations

from harness import BenchParser, Timing, fastest, header, measure, perturbed, ratio, set_threads, table

# Pin BLAS/OpenMP pools before numpy is imported so they cannot oversubscribe the cores; the
# benchmarked tools get their thread counts explicitly.
set_threads(1)

import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import ase.neighborlist  # noqa: E402
import matscipy.neighbours  # noqa: E402
import numpy as np  # noqa: E402
import vesin  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402

import dael  # noqa: E402

QUANTITIES = "ijSdD"
STRAIN_STD = 0.03  # dimensionless
RATTLE_RANGE = (0.05, 0.1)  # Å, standard deviation of the Gaussian rattle
SCALING_THRESHOLD = 1.05  # a 2-thread strategy must be this much faster than 1 thread to count

# A "runner" computes the neighbour lists of a list of structures and returns the total pair count.
Runner = Callable[[Sequence[Atoms]], int]


# --------------------------------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------------------------------


def make_pool(n: int, seed: int) -> list[Atoms]:
    """n 64-atom structures: first half Si diamond, second half NaCl rocksalt, strained and rattled."""
    rng = np.random.default_rng(seed)
    si = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)
    n_si = (n + 1) // 2
    return [perturbed(si if k < n_si else nacl, rng, strain=STRAIN_STD, rattle=RATTLE_RANGE) for k in range(n)]


# --------------------------------------------------------------------------------------------------
# Tools (each runner starts from ase.Atoms and asks for "ijSdD")
# --------------------------------------------------------------------------------------------------


def dael_batched(threads: int, cutoff: float) -> Runner:
    """One native call for the whole list (rayon over structures)."""

    def run(structures: Sequence[Atoms]) -> int:
        return len(dael.neighbor_lists(list(structures), cutoff, QUANTITIES, threads=threads).i)

    return run


def dael_loop(threads: int, cutoff: float) -> Runner:
    """One `dael.neighbor_list` call per structure (`threads` = intra-structure rayon threads)."""

    def run(structures: Sequence[Atoms]) -> int:
        total = 0
        for atoms in structures:
            total += len(dael.neighbor_list(atoms, cutoff, QUANTITIES, threads=threads)[0])
        return total

    return run


def vesin_loop(threads: int, cutoff: float) -> Runner:
    """One `vesin.NeighborList.compute` per structure; `threads` = vesin's own `n_threads`."""
    nl = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=threads)

    def run(structures: Sequence[Atoms]) -> int:
        total = 0
        for atoms in structures:
            total += len(nl.compute(atoms.positions, atoms.cell.array, atoms.pbc, quantities=QUANTITIES)[0])
        return total

    return run


def per_structure(pairs_of: Callable[[Atoms], int]) -> Runner:
    """A runner that calls a single-threaded tool once per structure; `pairs_of` returns the pair count."""

    def run(structures: Sequence[Atoms]) -> int:
        return sum(pairs_of(atoms) for atoms in structures)

    return run


def matscipy_loop(threads: int, cutoff: float) -> Runner:
    """One `matscipy.neighbours.neighbour_list` per structure (single-threaded; `threads` unused)."""
    del threads
    return per_structure(lambda atoms: len(matscipy.neighbours.neighbour_list(QUANTITIES, atoms, cutoff)[0]))


def ase_loop(threads: int, cutoff: float) -> Runner:
    """One `ase.neighborlist.neighbor_list` per structure (single-threaded; `threads` unused)."""
    del threads
    return per_structure(lambda atoms: len(ase.neighborlist.neighbor_list(QUANTITIES, atoms, cutoff)[0]))


def in_thread_pool(make: Callable[[int, float], Runner], cutoff: float, executor: ThreadPoolExecutor,
                   workers: int) -> Runner:
    """Split the structures into `workers` contiguous chunks, each run by its own 1-thread runner."""
    runners = [make(1, cutoff) for _ in range(workers)]

    def run(structures: Sequence[Atoms]) -> int:
        bounds = np.linspace(0, len(structures), workers + 1).astype(int)
        chunks = zip(runners, bounds[:-1], bounds[1:], strict=True)
        futures = [executor.submit(r, structures[lo:hi]) for r, lo, hi in chunks]
        return sum(f.result() for f in futures)

    return run


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def throughput(run: Runner, structures: Sequence[Atoms], repeats: int) -> Timing:
    """One untimed warm-up pass, then `repeats` timed passes (rate: structures/s of the best); the pair count
    (`value`) must be the same in every pass."""
    timing = measure(lambda: run(structures), repeat=repeats, warmup=1, count=len(structures))
    if len(set(timing.values)) != 1:
        raise RuntimeError(f"pair count changed between passes: {timing.values}")
    return timing


@dataclass
class Row:
    """One line of the results table."""

    tool: str
    call: str
    quantities: str
    subset: int
    one: Timing
    two: Timing
    notes: list[str] = field(default_factory=list)


def two_thread_choice(one: Timing, candidates: dict[str, Timing], notes: list[str]) -> Timing:
    """The fastest 2-thread strategy, or the 1-thread timing if none scales; explains the pick in notes."""
    measured = ", ".join(f"{name} {t.rate:,.0f}/s" for name, t in candidates.items())
    name, best = fastest(("1T", one), candidates, SCALING_THRESHOLD)
    notes.append(f"no 2T scaling, 2T := 1T (measured: {measured})" if best is one
                 else f"2T = {name} (measured: {measured})")
    return best


# --------------------------------------------------------------------------------------------------
# Correctness check
# --------------------------------------------------------------------------------------------------


def check_pairs(pool: Sequence[Atoms], cutoff: float) -> None:
    """Per-structure pair counts and sorted distances of every tool against dael on a few structures."""
    picks = sorted({0, 1, len(pool) // 2, len(pool) - 1})
    nl = vesin.NeighborList(cutoff=cutoff, full_list=True)
    tools: dict[str, Callable[[Atoms], tuple[np.ndarray, ...]]] = {
        "vesin": lambda a: tuple(nl.compute(a.positions, a.cell.array, a.pbc, quantities=QUANTITIES)),
        "ase": lambda a: ase.neighborlist.neighbor_list(QUANTITIES, a, cutoff),
        "matscipy": lambda a: matscipy.neighbours.neighbour_list(QUANTITIES, a, cutoff),
    }
    batched = dael.neighbor_lists([pool[k] for k in picks], cutoff, QUANTITIES, threads=1)
    for name, fn in tools.items():
        ok = True
        parts = []
        for slot, k in enumerate(picks):
            ref = dael.neighbor_list(pool[k], cutoff, QUANTITIES, threads=1)
            other = fn(pool[k])
            same_batch = len(batched[slot]["i"]) == len(ref[0])
            dd = np.abs(np.sort(ref[3]) - np.sort(other[3])).max() if len(ref[3]) == len(other[3]) else np.inf
            ok &= bool(len(ref[0]) == len(other[0]) and same_batch and dd < 1e-9)
            parts.append(f"#{k}: {len(ref[0])} vs {len(other[0])}")
        verdict = "OK" if ok else "MISMATCH"
        print(f"check dael vs {name:<8} pairs per structure ({'; '.join(parts)}); sorted d equal to 1e-9 Å, "
              f"batched == per-structure: {verdict}")


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = BenchParser(__doc__, n=200, repeats=1, ase_subset=50)
    parser.add_argument("--n", type=int, default=2000, help="structures in the pool (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per measurement, best kept")
    parser.add_argument("--cutoff", type=float, default=5.0, help="cutoff in Å (default 5)")
    parser.add_argument("--ase-subset", type=int, default=200, help="structures timed for ase (default 200)")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    n, repeats, cutoff = args.n, args.repeats, args.cutoff

    print(header(f"neighbour-list throughput, cutoff {cutoff} Å, quantities {QUANTITIES!r}, full lists, "
                 f"best of {repeats} after 1 warm-up", tools=("vesin", "ase", "matscipy")))

    t0 = time.perf_counter()
    pool = make_pool(n, args.seed)
    n_si = (n + 1) // 2
    subset = pool[:n_si][: (args.ase_subset + 1) // 2] + pool[n_si:][: args.ase_subset // 2]
    print(f"# pool: {n} structures x {len(pool[0])} atoms ({n_si} Si diamond, {n // 2} NaCl rocksalt), built "
          f"in {time.perf_counter() - t0:.1f} s; ase timed on {len(subset)} of them (half Si, half NaCl)")
    check_pairs(pool, cutoff)

    rows: list[Row] = []
    with ThreadPoolExecutor(max_workers=2) as executor:
        # dael, one native call for the pool
        one = throughput(dael_batched(1, cutoff), pool, repeats)
        two = throughput(dael_batched(2, cutoff), pool, repeats)
        rows.append(Row("dael", "neighbor_lists(pool, threads=N)", "ijSdD", n, one, two,
                        ["one native call; rayon over structures"]))

        Spec = tuple[str, str, str, Callable[[int, float], Runner], bool, Sequence[Atoms], list[str]]
        specs: list[Spec] = [
            ("dael", "neighbor_list(atoms) per structure", "ijSdD", dael_loop, True, pool, []),
            ("vesin", "NeighborList(full_list=True).compute", "ijSdD", vesin_loop, True, pool,
             ["i,j uint64, S int32; own n_threads uses std::thread (no OpenMP)"]),
            ("matscipy", "neighbours.neighbour_list", "ijSdD", matscipy_loop, False, pool,
             ["i,j,S int32; no threading option"]),
            ("ase", "neighborlist.neighbor_list", "ijSdD", ase_loop, False, subset,
             [f"timed on {len(subset)} structures; no threading option"]),
        ]
        for tool, call, quantities, make, has_own_threads, structures, notes in specs:
            one = throughput(make(1, cutoff), structures, repeats)
            candidates = {"2 Python threads": throughput(in_thread_pool(make, cutoff, executor, 2), structures,
                                                         repeats)}
            if has_own_threads:
                own = "threads=2" if tool == "dael" else "n_threads=2"
                candidates[f"{own} per call"] = throughput(make(2, cutoff), structures, repeats)
            two = two_thread_choice(one, candidates, notes)
            rows.append(Row(tool, call, quantities, len(structures), one, two, notes))

    # every tool must agree with dael on the total pair count of what it was timed on
    reference = {n: rows[0].one.value, len(subset): dael_batched(1, cutoff)(subset)}
    for row in rows:
        for t in (row.one, row.two):
            if t.value != reference[t.count]:
                row.notes.append(f"PAIR COUNT MISMATCH: {t.value} vs dael {reference[t.count]}")

    print_tables(rows, n, cutoff)


def print_tables(rows: list[Row], n: int, cutoff: float) -> None:
    """Throughput table, dael/X ratio table and a one-line summary."""
    print()
    print(f"Throughput [structures/s], {n} x 64-atom structures, cutoff {cutoff} Å (higher is better)")
    print(table([(r.tool, r.call, r.quantities, r.subset, r.one.rate, r.two.rate, "; ".join(r.notes)) for r in rows],
                ["tool", "call", "qty", ("timed on", "d"), ("1 thread", ",.0f"), ("2 threads", ",.0f"), "notes"]))
    print(f"(pairs per pass over the full pool: {rows[0].one.value:,}; all tools agree unless noted)")

    batched, loop = rows[0], rows[1]
    others = rows[2:]
    print()
    print("Speed ratios (dael throughput / other tool's throughput; >1 means dael is faster)")
    print(table([(f"dael {label} / {o.tool}", ratio(d.one.rate, o.one.rate), ratio(d.two.rate, o.two.rate))
                 for label, d in (("batched", batched), ("per-structure", loop)) for o in others],
                ["ratio", ("1 thread", ""), ("2 threads", "")]))

    ratios = ", ".join(f"{ratio(batched.one.rate, o.one.rate)} / {ratio(batched.two.rate, o.two.rate)} {o.tool}"
                       for o in others)
    print()
    print(f"Summary: dael batched {batched.one.rate:,.0f} / {batched.two.rate:,.0f} structures/s "
          f"at 1 / 2 threads = {ratios} (1T / 2T).")


if __name__ == "__main__":
    main()
