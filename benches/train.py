"""Allegro on CPU: seconds per training epoch and milliseconds per 64-atom call of dael's default model,
with 1 and 2 torch/OpenMP threads, against the reference oracle (quadratic SNAP in LAMMPS) as the anchor.

Data: `--frames` strained (3 %) and rattled (0.1 Å) 8-atom Si diamond cells labelled by the reference
oracle; 10 % are held out for validation. Inference: a rattled 64-atom Si cell, a new geometry every call,
energy + forces + stress, median of `--calls` after a warm-up (`dael.calculators.deploy.time_calls`). Every
thread pool (torch, OpenMP, BLAS, rayon) gets the row's thread count; the anchor runs on 1 thread.
Usage: python benches/train.py [--frames 48] [--epochs 20] [--calls 50] [--threads 1 2] [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from harness import BenchParser, header, perturbed, ratio, set_threads, table

from dael.calculators.deploy import load_calculator, time_calls
from dael.calculators.reference import reference_calculator
from dael.train import TrainSettings, train


def labelled(n: int, seed: int) -> list[Atoms]:
    """n strained (3 %), rattled (0.1 Å) 8-atom Si cells with the reference oracle's energy, forces, stress."""
    rng = np.random.default_rng(seed)
    calc = reference_calculator("Si")
    base = bulk("Si", "diamond", a=5.43, cubic=True)
    frames = []
    for _ in range(n):
        atoms = perturbed(base, rng, strain=0.03, rattle=0.1)
        atoms.calc = calc
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(),
                   "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def main() -> None:
    parser = BenchParser(__doc__, frames=10, epochs=2, calls=5, threads=[1])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    set_threads(1)

    frames = labelled(args.frames, seed=0)
    big = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    big.rattle(0.05, seed=1)
    anchor = time_calls(reference_calculator("Si"), big, args.calls)
    print(header(f"Allegro on CPU: {args.frames} x 8-atom Si frames, {args.epochs} epochs, default model "
                 "(Allegro l_max 1, 1 layer, 16/8 features, r_max 4.5 Å, float32)",
                 tools=("torch", "nequip", "lammps")))
    print(f"anchor: reference oracle (SNAP, LAMMPS) {anchor:.2f} ms per 64-atom call (1 thread)\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            set_threads(threads)
            settings = TrainSettings(epochs=args.epochs, patience=args.epochs, threads=threads)
            result = train(frames, Path(tmp) / f"t{threads}", settings=settings, progress=None)
            calc = load_calculator(result.model_dir, threads=threads)
            ms = time_calls(calc, big, args.calls)
            rows.append((threads, result.metrics["seconds_per_epoch"], result.metrics["train_seconds"], ms,
                         ratio(ms, anchor, 1)))
    print(table(rows, [("threads", "d"), ("s/epoch", ".3f"), ("train s (all)", ".1f"), ("ms/64-atom call", ".2f"),
                       ("ms / reference oracle ms", "")]))


if __name__ == "__main__":
    main()
