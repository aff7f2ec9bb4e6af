"""Throughput of per-atom OMFP fingerprints (with and without position gradients): dael vs libfp.

What it measures
----------------
Three cases, each a fixed-seed pool of distinct structures, every one rattled with Gaussian noise of
standard deviation 0.05 Å (no strain; cubic cells):

* Si 64    Si diamond, 2x2x2 cubic cells, a = 5.43 Å (64 atoms; pool of 16)
* C 64     C diamond, 2x2x2 cubic cells, a = 3.57 Å (64 atoms; pool of 8): the dense case, ~3x the
           atoms per sphere of Si
* Si 512   Si diamond, 4x4x4 cubic cells, a = 5.43 Å (512 atoms; pool of 2)

Both tools compute libfp's per-atom ("long") fingerprint with cutoff 5 Å, orbital 's' and natx = the
largest sphere (centre included) of the pool, as dael sizes it with `natx=None`. Without gradients:
`libfp.get_lfp` vs `dael.fingerprint(..., gradients=False)`. With gradients: `libfp.get_dfp` (values and
the dense (n, n, 3, natx) derivative ∂fp/∂r in 1/Å) vs `dael.fingerprint(..., gradients=True)` (values
and the same derivative stored sparsely). Before timing, each case/gradient row is checked once: dael's
values (and dense gradient) for the first structure must equal libfp's within 1e-10 x the largest |libfp
value|, and dael's batched result must equal its per-structure one.

Throughput is in atoms per second (fingerprinted atoms, each with its gradient where asked; higher is
better). Each number is the best of `--repeats` timed passes over the structures after a one-structure
untimed warm-up, but a measurement stops repeating once it has spent `--max-seconds` (at least one pass
is always timed). dael starts from `ase.Atoms` (reading them out is timed); libfp gets its input tuples
(lattice rows, wrapped Cartesian positions, 1-based types, Z per type) built before the clock starts.

libfp is slow with gradients on big cells, so it is timed on the first `libfp_n` structures of each pool
(see the notes under the table) and scaled to atoms/s; dael is timed on the whole pool.

Cores: libfp is single-threaded and holds the GIL, so its 2-core number is the better of one process
(a plain loop) and a 2-process `multiprocessing.Pool` over the structures; the table says which (1P/2P).
dael is timed at `threads=1` and `threads=2`, both as one batched call for the whole pool (rayon over
structures and atoms) and as one call per structure. BLAS/OpenMP pools are pinned to 1 thread.

Usage: python benches/fingerprints.py [--repeats 3] [--max-seconds 8] [--quick] [--seed 20240611]
"""

from __future__ import annotations

from harness import BenchParser, Timing, fastest, gmean, header, measure, perturbed, ratio, set_threads, table

# Pin BLAS/OpenMP pools before numpy is imported: libfp's eigensolvers must run on one core, and the
# benchmarked tools get their thread/process counts explicitly.
set_threads(1)

import multiprocessing  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing.pool import Pool  # noqa: E402

import libfp  # noqa: E402
import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402

import dael  # noqa: E402

CUTOFF = 5.0  # Å
ORBITAL = "s"
RATTLE = 0.05  # Å, standard deviation of the Gaussian rattle
TOLERANCE = 1e-10  # max |dael - libfp| allowed, relative to max |libfp|

# libfp's input: (lattice rows (3, 3) Å, wrapped Cartesian positions (n, 3) Å, 1-based types, Z per type)
LibfpCell = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# A runner fingerprints a list of structures (its own input type) and returns a checksum.
Runner = Callable[[Sequence], float]


# --------------------------------------------------------------------------------------------------
# Cases and structures
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A pool of `n_pool` rattled `reps`^3 cubic diamond cells; libfp is timed on `libfp_n` structures
    without gradients and `libfp_n_grad` with them."""

    name: str
    element: str
    a: float  # Å, cubic lattice constant
    reps: int
    n_pool: int
    libfp_n: int
    libfp_n_grad: int

    def pool(self, seed: int) -> list[Atoms]:
        """The rattled structures (fixed seed)."""
        rng = np.random.default_rng(seed)
        ideal = bulk(self.element, "diamond", a=self.a, cubic=True) * (self.reps, self.reps, self.reps)
        return [perturbed(ideal, rng, rattle=RATTLE) for _ in range(self.n_pool)]


FULL_CASES = [
    Case("Si 64", "Si", 5.43, 2, 16, 16, 16),
    Case("C 64", "C", 3.57, 2, 8, 8, 4),
    Case("Si 512", "Si", 5.43, 4, 2, 2, 2),
]
# --quick: tiny pools; the big case shrinks to 3x3x3 (216 atoms) and libfp's gradients of the C and big
# cases run on one structure, so that libfp's gradients stay cheap
QUICK_CASES = [
    Case("Si 64", "Si", 5.43, 2, 2, 2, 2),
    Case("C 64", "C", 3.57, 2, 2, 2, 1),
    Case("Si 216", "Si", 5.43, 3, 2, 2, 1),
]


def libfp_cell(atoms: Atoms) -> LibfpCell:
    """libfp's input tuple for one structure (positions wrapped into the cell)."""
    atoms = atoms.copy()
    atoms.wrap()
    species = sorted(set(atoms.numbers.tolist()))
    types = np.array([species.index(z) + 1 for z in atoms.numbers], dtype=np.int64)
    return atoms.cell.array.copy(), atoms.positions.copy(), types, np.array(species, dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------------


def libfp_one(task: tuple[LibfpCell, int, bool]) -> float:
    """libfp fingerprint (and gradient) of one structure; returns a checksum so that a worker process
    sends back a float, not the (n, n, 3, natx) array."""
    cell, natx, gradients = task
    if gradients:
        lfp, dfp = libfp.get_dfp(cell, cutoff=CUTOFF, log=False, orbital=ORBITAL, natx=natx)
        return float(lfp[0, 0] + dfp[0, 0, 0, 0])
    return float(libfp.get_lfp(cell, cutoff=CUTOFF, log=False, orbital=ORBITAL, natx=natx)[0, 0])


def _warm_worker() -> None:
    """Pool initializer: one tiny libfp call so that no first-call cost lands in a timed pass."""
    # the 8-atom cubic Si cell: 29 atoms per 5 Å sphere, so natx = 64 has room to spare
    libfp_one((libfp_cell(bulk("Si", "diamond", a=5.43, cubic=True)), 64, True))


def libfp_loop(natx: int, gradients: bool) -> Runner:
    """One libfp call per structure in this process."""

    def run(cells: Sequence[LibfpCell]) -> float:
        return sum(libfp_one((cell, natx, gradients)) for cell in cells)

    return run


def libfp_processes(workers: Pool, natx: int, gradients: bool) -> Runner:
    """The structures spread over the worker processes, one structure per task."""

    def run(cells: Sequence[LibfpCell]) -> float:
        return sum(workers.map(libfp_one, [(cell, natx, gradients) for cell in cells], chunksize=1))

    return run


def dael_batched(natx: int, gradients: bool, threads: int) -> Runner:
    """One native call for the whole list."""

    def run(structures: Sequence[Atoms]) -> float:
        fp = dael.fingerprint(list(structures), CUTOFF, natx=natx, orbital=ORBITAL, gradients=gradients,
                              threads=threads)
        return float(fp.values[0, 0])

    return run


def dael_loop(natx: int, gradients: bool, threads: int) -> Runner:
    """One `dael.numeric.fingerprint` call per structure (`threads` = rayon threads within the structure)."""

    def run(structures: Sequence[Atoms]) -> float:
        total = 0.0
        for atoms in structures:
            fp = dael.fingerprint(atoms, CUTOFF, natx=natx, orbital=ORBITAL, gradients=gradients,
                                  threads=threads)
            total += float(fp.values[0, 0])
        return total

    return run


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def throughput(run: Runner, items: Sequence, atoms: int, repeats: int, max_seconds: float,
               warm_up: bool = True) -> Timing:
    """Optional untimed warm-up on the first item, then the best of up to `repeats` timed passes over `items`,
    stopping early once `max_seconds` s have been spent on timed passes (rate: atoms/s; `atoms`: atoms in
    `items`)."""
    if warm_up:
        run(items[:1])
    return measure(lambda: run(items), repeat=repeats, max_seconds=max_seconds, count=atoms)


# --------------------------------------------------------------------------------------------------
# Correctness check
# --------------------------------------------------------------------------------------------------


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref| (inf on a shape mismatch)."""
    if ours.shape != ref.shape:
        return float("inf")
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def check(case: Case, pool: Sequence[Atoms], cell: LibfpCell, natx: int, gradients: bool) -> bool:
    """dael vs libfp on the first structure, dael batched vs per-structure on the pool; prints one line.
    The libfp call also warms libfp up in this process."""
    ours = dael.fingerprint(pool[0], CUTOFF, natx=natx, orbital=ORBITAL, gradients=gradients, threads=1)
    if gradients:
        lfp, dfp = libfp.get_dfp(cell, cutoff=CUTOFF, log=False, orbital=ORBITAL, natx=natx)
        errors = {"values": relative_error(ours.values, lfp),
                  "dfp/dr": relative_error(ours.dense_grad(0), dfp)}
    else:
        lfp = libfp.get_lfp(cell, cutoff=CUTOFF, log=False, orbital=ORBITAL, natx=natx)
        errors = {"values": relative_error(ours.values, lfp)}
    batched = dael.fingerprint(list(pool), CUTOFF, natx=natx, orbital=ORBITAL, gradients=gradients, threads=2)
    per_structure = [dael.fingerprint(a, CUTOFF, natx=natx, orbital=ORBITAL, gradients=gradients, threads=1)
                     for a in pool]
    same = all(relative_error(batched.of(k), fp.values) < TOLERANCE for k, fp in enumerate(per_structure))
    if gradients:
        same &= all(relative_error(batched.dense_grad(k), fp.dense_grad(0)) < TOLERANCE
                    for k, fp in enumerate(per_structure))
    ok = same and all(e < TOLERANCE for e in errors.values())
    measured = ", ".join(f"{name} {err:.1e}" for name, err in errors.items())
    print(f"check {case.name:<7} grad={'yes' if gradients else 'no ':<3}: max|dael - libfp| / max|libfp| on "
          f"structure 0: {measured} (< {TOLERANCE:.0e}); batched == per-structure on {len(pool)}: "
          f"{'OK' if ok else 'MISMATCH'}")
    return ok


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    case: Case
    gradients: bool
    natx: int
    libfp_structures: int
    libfp_one: Timing
    libfp_two: Timing
    libfp_two_how: str  # "1P" or "2P"
    batched_one: Timing
    batched_two: Timing
    loop_one: Timing
    loop_two: Timing


def measure_case(case: Case, pool: Sequence[Atoms], cells: Sequence[LibfpCell], natx: int, gradients: bool,
                 workers: Pool, repeats: int, max_seconds: float) -> Row:
    """All timings of one case with or without gradients."""
    n_atoms = len(pool[0])
    k = min(case.libfp_n_grad if gradients else case.libfp_n, len(cells))
    subset = cells[:k]
    # libfp already ran on structure 0 in this process during the check; the workers warmed up at start
    lib_one = throughput(libfp_loop(natx, gradients), subset, k * n_atoms, repeats, max_seconds, warm_up=False)
    lib_two_p = throughput(libfp_processes(workers, natx, gradients), subset, k * n_atoms, repeats, max_seconds,
                           warm_up=False)
    how, lib_two = fastest(("1P", lib_one), {"2P": lib_two_p})
    total = len(pool) * n_atoms
    timings = [throughput(make(natx, gradients, threads), pool, total, repeats, max_seconds)
               for make in (dael_batched, dael_loop) for threads in (1, 2)]
    return Row(case, gradients, natx, k, lib_one, lib_two, how, *timings)


def main(argv: Sequence[str] | None = None) -> None:
    parser = BenchParser(__doc__, about="2 structures per case, 216-atom big case", repeats=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per measurement, best kept")
    parser.add_argument("--max-seconds", type=float, default=8.0,
                        help="stop repeating a measurement once it has spent this many seconds (default 8)")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    cases = QUICK_CASES if args.quick else FULL_CASES

    print(header(f"per-atom OMFP fingerprints, cutoff {CUTOFF} Å, orbital {ORBITAL!r}, natx = largest sphere; "
                 f"best of <= {args.repeats} passes (stop after {args.max_seconds:g} s) after a 1-structure "
                 "warm-up", tools=("libfp",)))

    start = time.perf_counter()
    rows: list[Row] = []
    all_ok = True
    with multiprocessing.Pool(processes=2, initializer=_warm_worker) as workers:
        for index, case in enumerate(cases):
            pool = case.pool(args.seed + index)
            natx = int(dael.fingerprint(pool, CUTOFF, natx=None).settings.natx)
            cells = [libfp_cell(atoms) for atoms in pool]
            print(f"# {case.name}: {len(pool)} x {len(pool[0])}-atom {case.element} diamond (a = {case.a} Å, "
                  f"{case.reps}x{case.reps}x{case.reps}, rattle {RATTLE} Å), natx {natx}")
            for gradients in (False, True):
                all_ok &= check(case, pool, cells[0], natx, gradients)
                rows.append(measure_case(case, pool, cells, natx, gradients, workers, args.repeats,
                                         args.max_seconds))
    print(f"# measured in {time.perf_counter() - start:.0f} s")
    print_table(rows, all_ok)


def print_table(rows: Sequence[Row], all_ok: bool) -> None:
    """Throughput table with dael/libfp ratios, and a one-line summary."""
    print()
    print("Throughput [atoms/s] (higher is better); × = dael / libfp (>1: dael faster); "
          "libfp 2c = better of 1 process (1P) and 2 processes (2P)")
    lines = []
    for r in rows:
        lib_one, lib_two = r.libfp_one.rate, r.libfp_two.rate
        timings = (r.batched_one, r.batched_two, r.loop_one, r.loop_two)
        b_one, b_two, l_one, l_two = (t.rate for t in timings)
        lines.append((r.case.name, "yes" if r.gradients else "no", r.natx, r.case.n_pool, r.libfp_structures,
                      lib_one, f"{lib_two:,.0f} ({r.libfp_two_how})",
                      b_one, b_two, ratio(b_one, lib_one), ratio(b_two, lib_two),
                      l_one, l_two, ratio(l_one, lib_one), ratio(l_two, lib_two),
                      f"{r.libfp_one.passes}/{r.libfp_two.passes} {'/'.join(str(t.passes) for t in timings)}"))
    rate, number, text = ",.0f", "d", ""
    print(table(lines, ["case", "grad", ("natx", number), ("pool", number), ("libfp on", number),
                        ("libfp 1c", rate), ("libfp 2c", text), ("batched 1T", rate), ("batched 2T", rate),
                        ("batched × 1c", text), ("batched × 2c", text), ("per-structure 1T", rate),
                        ("per-structure 2T", rate), ("per-structure × 1c", text), ("per-structure × 2c", text),
                        ("passes", text)]))
    print("(pool: structures in the pool, dael timed on all; libfp on: the first structures libfp is timed on; "
          "batched: dael, one call for the pool; per-structure: dael, one call per structure; "
          "passes: timed passes kept best of, libfp 1P/2P and dael batched 1T/2T, per-structure 1T/2T)")

    one = [r.batched_one.rate / r.libfp_one.rate for r in rows]
    two = [r.batched_two.rate / r.libfp_two.rate for r in rows]
    print()
    print(f"Summary: dael batched is {min(one):.1f}-{max(one):.1f}× libfp on 1 core (geometric mean "
          f"{gmean(one):.1f}×) and {min(two):.1f}-{max(two):.1f}× on 2 cores "
          f"(geometric mean {gmean(two):.1f}×) "
          f"over {len(rows)} case/gradient rows; values and gradients "
          f"{'equal libfp to 1e-10 relative' if all_ok else 'DO NOT all equal libfp (see check lines)'}.")


if __name__ == "__main__":
    main()
