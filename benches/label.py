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
process, is part of the number). Each row prints its ratio to the anchor. OMP/BLAS threads are 1.

Usage: python benches/label.py [--n 200] [--workers 1 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from ase.build import bulk  # noqa: E402

from dael.calculators.registry import make_calculator  # noqa: E402
from dael.data.dataset import Dataset  # noqa: E402
from dael.label.labelling import label, label_dataset  # noqa: E402


def pool(n: int, seed: int = 7) -> list:
    rng = np.random.default_rng(seed)
    base = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    out = []
    for _ in range(n):
        atoms = base.copy()
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        out.append(atoms)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    structures = pool(args.n)

    calc = make_calculator("reference")
    start = time.perf_counter()
    for atoms in structures:
        a = atoms.copy()
        a.calc = calc
        a.get_potential_energy(), a.get_forces(), a.get_stress()
    anchor = args.n / (time.perf_counter() - start)
    rows = [("anchor: direct calls, 1 process", anchor)]

    for w in [0, *args.workers]:
        start = time.perf_counter()
        assert all(o.ok for o in label(structures, "reference", workers=w))
        rows.append((f"label, workers={w}", args.n / (time.perf_counter() - start)))
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            dataset = Dataset(Path(tmp) / f"w{w}.db")
            start = time.perf_counter()
            dataset.add(structures, oracle="reference")
            summary = label_dataset(dataset, "reference", workers=w)
            assert summary.labeled == args.n
            rows.append((f"label_dataset (SQLite), workers={w}", args.n / (time.perf_counter() - start)))

    print(f"Reference oracle (SNAP), {args.n} x 64-atom Si, energy + forces + stress, {os.cpu_count()} cores")
    print(f"{'case':<40}{'structures/s':>14}{'x anchor':>10}")
    for name, rate in rows:
        print(f"{name:<40}{rate:>14.1f}{rate / anchor:>10.2f}")


if __name__ == "__main__":
    main()
