"""Throughput of labelling with the reference oracle: dael's executor and store vs direct calculator calls.

What it measures
----------------
A fixed-seed pool of `--n` distinct 64-atom Si cells (diamond, 2x2x2 cubic, a = 5.43 Å, rattled by 0.05 Å),
labelled with energy, forces and stress by the reference oracle (quadratic SNAP in LAMMPS):

* anchor        one ReferenceCalculator called on each structure in a plain loop in this process
* label w=0     ``dael.label.labelling.label(workers=0)``: the executor in this process (no IPC)
* label w=N     ``dael.label.labelling.label(workers=N)``: N worker processes, start-up included
* dataset w=N   ``dael.label.labelling.label_dataset``: the same, plus writing the pending rows and committing each
                result to an ASE SQLite database (one transaction per result)

Throughput is in structures labelled per second, wall time, one pass each (worker start-up, about 1 s per
process, is part of the number). Each row prints its ratio to the anchor. Every thread pool (OpenMP, BLAS,
rayon) has 1 thread, in this process and in the workers.

Usage: python benches/label.py [--n 200] [--workers 1 2] [--quick]
"""

from __future__ import annotations

from harness import BenchParser, header, measure, perturbed, ratio, set_threads, table

set_threads(1)

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.calculator import Calculator  # noqa: E402

from dael.calculators.registry import make_calculator  # noqa: E402
from dael.data.dataset import Dataset  # noqa: E402
from dael.label.labelling import label, label_dataset  # noqa: E402


def pool(n: int, seed: int = 7) -> list[Atoms]:
    """n 64-atom Si diamond cells rattled by 0.05 Å."""
    rng = np.random.default_rng(seed)
    base = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    return [perturbed(base, rng, rattle=0.05) for _ in range(n)]


def direct_calls(calc: Calculator, structures: list[Atoms]) -> None:
    """The anchor: one calculator on every structure in a plain loop."""
    for atoms in structures:
        a = atoms.copy()
        a.calc = calc
        a.get_potential_energy(), a.get_forces(), a.get_stress()


def with_dataset(structures: list[Atoms], path: Path, workers: int) -> None:
    """Add the structures to a new ASE SQLite dataset and label it."""
    dataset = Dataset(path)
    dataset.add(structures, oracle="reference")
    summary = label_dataset(dataset, "reference", workers=workers)
    assert summary.labeled == len(structures)


def labelled(structures: list[Atoms], workers: int) -> None:
    """Label the structures with dael's executor; every outcome must be ok."""
    assert all(o.ok for o in label(structures, "reference", workers=workers))


def main() -> None:
    parser = BenchParser(__doc__, n=16, workers=[1])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    structures = pool(args.n)
    print(header(f"reference oracle (SNAP), {args.n} x 64-atom Si, energy + forces + stress, structures/s, "
                 "one pass each", tools=("ase", "lammps")))

    calc = make_calculator("reference")  # made before the clock starts
    anchor = measure(lambda: direct_calls(calc, structures), count=args.n)
    rows = [("anchor: direct calls, 1 process", anchor)]
    for w in [0, *args.workers]:
        rows.append((f"label, workers={w}", measure(lambda w=w: labelled(structures, w), count=args.n)))
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            run = measure(lambda w=w: with_dataset(structures, Path(tmp) / f"w{w}.db", w), count=args.n)
            rows.append((f"label_dataset (SQLite), workers={w}", run))

    print(table([(name, t.rate, ratio(t.rate, anchor.rate)) for name, t in rows],
                ["case", ("structures/s", ".1f"), ("× anchor (direct calls)", "")]))


if __name__ == "__main__":
    main()
