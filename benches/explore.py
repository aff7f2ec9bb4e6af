"""Does the entropy bias make MD explore more? Biased vs plain MD on Si at equal steps and temperatures.

For 64-atom diamond Si driven by the `reference` oracle (quadratic SNAP), each variant runs one NVT
Langevin trajectory per temperature (300 K and 1000 K by default; dt 1 fs, friction 0.01/fs, 100
unbiased thermalisation steps, then `--steps` biased steps, `--snapshots` evenly spaced snapshots):

  plain          k_g = 0, k_l = 0 (the random-MD baseline's dynamics)
  global         k_g = 2 eV (global entropy against an empty dataset that grows with accepted snapshots)
  global+local   k_g = 2 eV, k_l = 1 eV

Every snapshot of a variant is pooled, and the pool's global entropy (log det of the fingerprint
covariance + 1e-3 I, per atom and per configuration; OMFP s, 5 Å, natx 50) and kNN entropy
(Kozachenko–Leonenko, k = 1, per atom) are printed, with the difference to plain MD. Also the wall time
per MD step of each variant and, if CHGNet is installed, of the CHGNet driver (1 thread).
Usage: python benches/explore.py [--steps 1000] [--snapshots 10] [--workers 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ase.build import bulk
from ase.io import read

import dael
from dael.explore.explorer import Explorer, grid
from dael.explore.md import MDSettings
from dael.numeric.entropy import GlobalEntropy, knn_entropy

VARIANTS = {"plain": (0.0, 0.0), "global": (2.0, 0.0), "global+local": (2.0, 1.0)}
SETTINGS = dael.FingerprintSettings(5.0, 50, "s")


def entropies(snapshots: list) -> tuple[float, float, float]:
    fps = dael.fingerprint(snapshots, cutoff=SETTINGS.cutoff, natx=SETTINGS.natx)
    atom, config = GlobalEntropy("atom"), GlobalEntropy("config")
    atom.add(fps)
    config.add(fps)
    return atom.logdet, config.logdet, knn_entropy(fps.values, 1)


def chgnet_ms_per_step(atoms) -> float | None:
    try:
        import torch
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError:
        return None
    torch.set_num_threads(1)
    calc = CHGNetCalculator(use_device="cpu")
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.get_forces()
    start = time.perf_counter()
    for _ in range(5):
        atoms.positions += 0.01
        atoms.get_forces()
    return (time.perf_counter() - start) / 5 * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=10)
    ap.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 1000.0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="100 steps, 5 snapshots")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.snapshots = 100, 5
    si = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    md = MDSettings(steps=args.steps, snapshots=args.snapshots, thermalize=100, relax_steps=50)
    print(f"Si 64 atoms, reference driver, {args.steps} biased steps x {len(args.temperatures)} "
          f"temperatures, {args.snapshots} snapshots each, {args.workers} workers")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kg, kl) in VARIANTS.items():
            jobs = grid({"diamond": si}, [0.0], args.temperatures, [kg], [kl], md=md)
            state = GlobalEntropy("atom", settings=SETTINGS)
            start = time.perf_counter()
            explorer = Explorer("reference", state, Path(tmp) / name, min_gain=0.01, workers=args.workers)
            result = explorer.run(jobs)
            seconds = time.perf_counter() - start
            snaps = read(Path(tmp) / name / "snapshots.extxyz", ":")
            status = ", ".join(sorted({t["status"] for t in result.trajectories}))
            per_step = seconds / (len(jobs) * (args.steps + 100)) * min(args.workers, len(jobs)) * 1e3
            rows[name] = (*entropies(snaps), per_step, result.accepted, len(snaps), status)
    plain = rows["plain"]
    print(f"{'variant':14s} {'logdet/atom':>12s} {'logdet/config':>14s} {'kNN H (atom)':>13s} "
          f"{'ms/step':>8s} {'accepted':>9s}  status")
    for name, (la, lc, h, ms, acc, n, status) in rows.items():
        delta = "" if name == "plain" else \
            f"  (Δ vs plain: {la - plain[0]:+.2f}, {lc - plain[1]:+.2f}, {h - plain[2]:+.2f})"
        print(f"{name:14s} {la:12.2f} {lc:14.2f} {h:13.2f} {ms:8.1f} {acc:5d}/{n:<3d}  {status}{delta}")
    ms = chgnet_ms_per_step(si)
    if ms is not None:
        print(f"CHGNet driver: {ms:.0f} ms per 64-atom energy+forces call (1 torch thread)")


if __name__ == "__main__":
    main()
