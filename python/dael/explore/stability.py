"""MD stability of a trained potential: does its MD stay physical where the campaign explored?

For each start (a seed phase relaxed with the oracle at the grid's highest pressure, repeated to at least
64 atoms), NVT Langevin MD with the model at the grid's hottest temperature; the blow-up guard of
`dael.explore.md.Guard` decides when a run has failed. Reported: the share of steps survived (1 = every run
finished) and the model's energy and force errors against the oracle on snapshots along the trajectories
(meV/atom, meV/Å).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from dael.explore.md import MDSettings, relax, run_md

_ORACLE_LOCK = threading.Lock()
"""One oracle call at a time (LAMMPS instances are not shared between threads)."""


def repeats(atoms: Atoms, least: int) -> np.ndarray:
    """Repetitions (3,) of `atoms`' cell, grown one at a time along its shortest repeated periodic vector, until
    the supercell holds at least `least` atoms (an 8-atom cubic cell: 2×2×2 for 64; a molecule: 1×1×1)."""
    reps = np.ones(3, dtype=int)
    lengths = np.where(atoms.pbc, np.linalg.norm(atoms.cell.array, axis=1), np.inf)  # periodic axes only
    while atoms.pbc.any() and len(atoms) * reps.prod() < least:
        reps[np.argmin(lengths * reps)] += 1
    return reps


def md_starts(seeds: dict[str, Atoms], oracle: Calculator, pressure: float, atoms: int = 64) -> list[Atoms]:
    """Each seed phase relaxed with the oracle at `pressure` GPa, repeated along its shortest periodic cell vectors
    until it holds at least `atoms` atoms (a molecule is not repeated)."""
    out = []
    for phase, seed in seeds.items():
        start = relax(seed, oracle, pressure, fmax=0.05, steps=200)
        start.calc = None
        big = start.repeat(tuple(int(r) for r in repeats(start, atoms)))
        big.info.update({"phase": phase, "pressure_GPa": float(pressure)})
        out.append(big)
    return out


def md_stability(calc: Calculator, starts: Sequence[Atoms], oracle: Calculator | None, temperature: float,
                 steps: int = 300, checks: int = 3, seed: int = 0) -> dict:
    """Run `steps` fs of NVT MD at `temperature` K with `calc` from each start; returns survived (share of
    steps completed, mean over starts), energy_mae (meV/atom) and force_mae (meV/Å) of calc against the
    oracle on `checks` snapshots per run (oracle None: survival only; the errors are None), and the runs that
    stopped early."""
    done, de, df, stopped = [], [], [], []
    for n, start in enumerate(starts):
        md = MDSettings(temperature=temperature, steps=steps, snapshots=checks, relax_steps=0, seed=seed + n)
        try:
            traj = run_md(start, calc, calc, md)
        except Exception as exc:  # a model that cannot even run counts as failed at step 0
            done.append(0.0)
            stopped.append(f"{start.info.get('phase', n)}: {type(exc).__name__}: {exc}")
            continue
        done.append(traj.steps_done / steps)
        if traj.status != "ok":
            stopped.append(f"{start.info.get('phase', n)}: {traj.status}")
        for snap in traj.snapshots if oracle is not None else ():  # None: survival only, no oracle labels
            probe = snap.copy()
            probe.calc = calc
            energy, forces = probe.get_potential_energy(), probe.get_forces()
            with _ORACLE_LOCK:
                probe.calc = oracle
                ref_energy, ref_forces = probe.get_potential_energy(), probe.get_forces()
            de.append(abs(energy - ref_energy) / len(probe))
            df.append(np.abs(forces - ref_forces).ravel())
    return {"survived": float(np.mean(done)) if done else float("nan"),
            "energy_mae": 1e3 * float(np.mean(de)) if de else None,
            "force_mae": 1e3 * float(np.mean(np.concatenate(df))) if df else None,
            "stress_mae": None, "stopped": stopped}
