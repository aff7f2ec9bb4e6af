"""Allegro on CPU: seconds per training epoch and milliseconds per 64-atom call of dael's default model,
with 1 and 2 torch/OpenMP threads, against the reference oracle (quadratic SNAP in LAMMPS) as the anchor.

Data: `--frames` strained (3 %) and rattled (0.1 Å) 8-atom Si diamond cells labelled by the reference
oracle; 10 % are held out for validation. Inference: a rattled 64-atom Si cell, a new geometry every call,
energy + forces + stress, median of `--calls` after a warm-up.
Usage: python benches/train.py [--frames 48] [--epochs 20] [--calls 50] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from dael.calculators.deploy import load_calculator, time_calls
from dael.calculators.reference import reference_calculator
from dael.train import TrainSettings, train


def labelled(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    calc = reference_calculator("Si")
    frames = []
    for _ in range(n):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
        atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = calc
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(),
                   "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    frames = labelled(args.frames, seed=0)
    big = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    big.rattle(0.05, seed=1)
    anchor = time_calls(reference_calculator("Si"), big, args.calls)
    print(f"{args.frames} x 8-atom Si frames, {args.epochs} epochs, default model "
          f"(Allegro l_max 1, 1 layer, 16/8 features, r_max 4.5 Å, float32)")
    print(f"anchor: reference oracle (SNAP, LAMMPS) {anchor:.2f} ms per 64-atom call\n")
    print(f"{'threads':>7}  {'s/epoch':>8}  {'train s (all)':>13}  {'ms/64-atom call':>15}  {'x oracle':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            settings = TrainSettings(epochs=args.epochs, patience=args.epochs, threads=threads)
            result = train(frames, Path(tmp) / f"t{threads}", settings=settings, progress=None)
            calc = load_calculator(result.model_dir, threads=threads)
            ms = time_calls(calc, big, args.calls)
            print(f"{threads:>7}  {result.metrics['seconds_per_epoch']:>8.3f}  "
                  f"{result.metrics['train_seconds']:>13.1f}  {ms:>15.2f}  {ms / anchor:>8.1f}")


if __name__ == "__main__":
    main()
