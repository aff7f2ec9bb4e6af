"""MD robustness of a model: does its own MD stay physical where it will be used, and for how long?

For each seed phase and condition (`dael.check.settings.conditions`: the grid's hottest temperature at its
highest pressure, and one step beyond both), the phase relaxed by the model at the pressure and repeated to at
least `atoms` atoms (dael.explore.stability.md_starts) runs `seeds` Langevin trajectories of `md_ps` ps with the
model (NVT at the relaxed cell, or isotropic NPT at the pressure; dael.explore.md.run_md). The start is checked,
then the run every 10 fs by `FailureGuard`; the first failure ends the run. Reported per run: failed or not, why
(`kind` and the guard's sentence) and the time to failure (ps, the check that saw it); in all: the failure
fraction and the median time to failure of the runs that failed. With a `journal` file each finished run is
appended to it at once, and a rerun with the same journal runs only the trajectories it does not hold yet.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii

from dael.calculators.registry import make_calculator
from dael.check.journal import Journal, journal_header, key, read_journal
from dael.check.settings import CheckSettings, conditions
from dael.explore.md import Guard, MDSettings, run_md
from dael.explore.stability import md_starts
from dael.label.labelling import CLOSEST
from dael.label.workers import process_pool
from dael.numeric.neighbors import neighbor_list

CHECK_EVERY = 10
"""MD steps between two checks of a trajectory (dael.explore.md.run_md's guard interval)."""

KINDS = {"non-finite": "non-finite", "atoms": "close contact", "force": "force", "energy jumped": "energy jump",
         "cell volume": "volume"}
"""The failure kind of each reason the base Guard gives, by the reason's first words."""


@dataclass
class FailureGuard(Guard):
    """The blow-up guard of the explorer (dael.explore.md.Guard: non-finite energy or forces, a force above
    max_force eV/Å, a potential-energy jump above max_energy_jump eV/atom between checks, a cell volume outside
    [min_volume_ratio, max_volume_ratio] × the start's) with the failures of a model check added: two atoms
    closer than `closest` × the sum of their covalent radii (the rule of dael.label.labelling.refusal for labels), the
    potential energy more than `max_drop` eV/atom below the relaxed start's (a hole in the potential surface),
    an atom with no other within `isolated` × the sum of their covalent radii (it lost its neighbours). After a
    failure `kind` names it ('close contact', 'non-finite', 'force', 'energy jump', 'energy drop', 'volume',
    'lost neighbours'); `checks` counts the checks passed since `start`."""

    closest: float = CLOSEST
    isolated: float = 2.0
    max_drop: float = 1.0
    kind: str | None = None
    checks: int = 0
    _start_energy: float | None = None

    def start(self, atoms: Atoms) -> None:
        super().start(atoms)
        self.kind, self.checks, self._start_energy = None, 0, None

    def check(self, atoms: Atoms) -> str | None:
        if not (np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
            self.kind = "non-finite"
            return "non-finite positions or cell"
        reason = self._contacts(atoms)
        if reason is None:
            reason = super().check(atoms)
            if reason is not None:
                self.kind = next((k for prefix, k in KINDS.items() if reason.startswith(prefix)), "other")
        if reason is not None:
            return reason
        energy = atoms.get_potential_energy() / len(atoms)
        if self._start_energy is None:
            self._start_energy = energy
        elif energy < self._start_energy - self.max_drop:
            self.kind = "energy drop"
            return f"potential energy {energy - self._start_energy:+.2f} eV/atom below the relaxed start's"
        self.checks += 1
        return None

    def _contacts(self, atoms: Atoms) -> str | None:
        """Close contacts and atoms that lost their neighbours, from one neighbour list."""
        radii = covalent_radii[atoms.numbers]
        i, j, d = neighbor_list(atoms, self.isolated * 2 * float(radii.max()), "ijd")
        sums = radii[i] + radii[j]
        close = np.flatnonzero(d < self.closest * sums)
        symbols = atoms.get_chemical_symbols()
        if len(close):
            k = close[np.argmin(d[close] / sums[close])]
            a, b = int(i[k]), int(j[k])
            self.kind = "close contact"
            return (f"atoms {a} ({symbols[a]}) and {b} ({symbols[b]}) are {d[k]:.3f} Å apart, closer than "
                    f"{self.closest:g} × the sum of their covalent radii ({radii[a]:.2f} + {radii[b]:.2f} Å)")
        lonely = np.setdiff1d(np.arange(len(atoms)), i[d < self.isolated * sums])
        if len(lonely):
            self.kind = "lost neighbours"
            return (f"atom {int(lonely[0])} ({symbols[lonely[0]]}) has no neighbour within {self.isolated:g} × "
                    f"the sum of covalent radii ({len(lonely)} such atoms)")
        return None


def guard(settings: CheckSettings) -> FailureGuard:
    """The guard of one trajectory with the settings' thresholds."""
    return FailureGuard(max_force=settings.max_force, max_energy_jump=settings.max_energy_jump,
                        closest=settings.closest, isolated=settings.isolated, max_drop=settings.max_drop)


_MODELS: dict[str, Calculator] = {}


def _model(model: str | Calculator, params: dict[str, Any]) -> Calculator:
    """The calculator of `model` (a registry name, built once per process, or a calculator)."""
    if not isinstance(model, str):
        return model
    key = f"{model} {sorted(params.items())}"
    if key not in _MODELS:
        _MODELS[key] = make_calculator(model, **params)
    return _MODELS[key]


def run_one(model: str | Calculator, params: dict[str, Any], start: Atoms, pressure: float, temperature: float,
            seed: int, settings: CheckSettings) -> dict:
    """One trajectory of `model` from the relaxed `start` at `pressure` GPa and `temperature` K (seed of its
    velocities and Langevin noise); the run's record (see the module's docstring)."""
    began = time.perf_counter()
    record = {"phase": start.info.get("phase"), "pressure_GPa": float(pressure), "temperature_K": float(temperature),
              "seed": int(seed), "atoms": len(start)}
    g = guard(settings)
    try:
        calc = _model(model, params)
        first = start.copy()
        first.calc = calc
        g.start(first)
        reason = g.check(first)  # a start the model's relaxation collapsed fails at t = 0
        steps = 0
        if reason is None:
            md = MDSettings(temperature=temperature, pressure=pressure, ensemble=settings.ensemble,
                            steps=settings.steps, snapshots=1, dt=settings.dt, friction=settings.friction,
                            relax_steps=0, seed=seed, guard=g)
            traj = run_md(start, calc, calc, md)
            steps = traj.steps_done
            reason = None if traj.status == "ok" else traj.status.partition(": ")[2]
    except Exception as exc:  # a model that raises has failed; the last check it passed dates the failure
        g.kind, reason, steps = "error", f"{type(exc).__name__}: {exc}", g.checks * CHECK_EVERY
    failed = reason is not None
    ps = steps * settings.dt / 1000
    return {**record, "failed": failed, "kind": g.kind if failed else None, "reason": reason,
            "time_to_failure_ps": round(ps, 4) if failed else None, "ps": round(ps, 4),
            "seconds": round(time.perf_counter() - began, 2)}


def md_robustness(model: str | Calculator, seeds: dict[str, Atoms], pressures: list[float],
                  temperatures: list[float], settings: CheckSettings | None = None,
                  params: dict[str, Any] | None = None, say: Callable[[str], None] | None = None,
                  journal: Path | None = None, identity: Any = None) -> dict:
    """MD robustness of `model` (a calculator, or a registry name built with `params`; a name is needed for
    settings.workers > 1) on the seed phases at the conditions of the grid `pressures` (GPa) × `temperatures`
    (K). Returns (JSON-ready, no NaN): passed (no run failed), trajectories, failed, failure_fraction,
    median_time_to_failure_ps (None when none failed), by_kind (failures per kind), conditions, ps, and runs
    (one record per trajectory, run_one's). `journal`: a file each finished run is appended to; the runs it
    already holds are not run again (its first line records `identity`, what names the model, and the MD
    settings: a journal of another model or settings is an error)."""
    s = settings or CheckSettings()
    params = params or {}
    if s.workers > 1 and not isinstance(model, str):
        raise ValueError("MD robustness with several workers needs the model as a registry name (e.g. "
                         "allegro:PATH), which each worker process builds")
    header = journal_header(s, identity)
    done = read_journal(Path(journal), header) if journal is not None else {}
    calc = _model(model, params)
    jobs, runs = [], list(done.values())
    for n, (pressure, temperature) in enumerate(conditions(pressures, temperatures, s.beyond)):
        for phase, seed in seeds.items():
            todo = [k for k in range(s.seed + 1000 * n, s.seed + 1000 * n + s.seeds)
                    if key(phase, pressure, temperature, k) not in done]
            if not todo:
                continue
            try:
                start = md_starts({phase: seed}, calc, pressure, s.atoms)[0]
            except Exception as exc:  # the model cannot even relax the phase: every run fails at t = 0
                runs += [{"phase": phase, "pressure_GPa": pressure, "temperature_K": temperature, "seed": k,
                          "atoms": None, "failed": True, "kind": "error", "reason": f"relaxation: "
                          f"{type(exc).__name__}: {exc}", "time_to_failure_ps": 0.0, "ps": 0.0, "seconds": 0.0}
                         for k in todo]
                continue
            jobs += [(start, pressure, temperature, k) for k in todo]
    if done and say is not None:
        say(f"  md: {len(done)} trajectories read back from {journal}, {len(jobs)} to run")
    log = Journal(None if journal is None else Path(journal), header, list(done.values()))
    try:
        if s.workers == 1:
            for job in jobs:
                runs.append(run_one(calc, params, *job, s))
                log.write(runs[-1])
                _progress(runs[-1], say)
        else:
            with process_pool(s.workers) as pool:
                for fut in as_completed([pool.submit(run_one, model, params, *job, s) for job in jobs]):
                    runs.append(fut.result())
                    log.write(runs[-1])
                    _progress(runs[-1], say)
    finally:
        log.close()
    runs.sort(key=lambda r: (r["pressure_GPa"], r["temperature_K"], str(r["phase"]), r["seed"]))
    return summary(runs, s, pressures, temperatures)


def _progress(run: dict, say: Callable[[str], None] | None) -> None:
    if say is not None:
        verdict = f"failed at {run['time_to_failure_ps']:g} ps: {run['reason']}" if run["failed"] else "ok"
        say(f"  md {run['phase']} {run['pressure_GPa']:g} GPa {run['temperature_K']:g} K seed {run['seed']}: "
            f"{verdict}")


def summary(runs: list[dict], settings: CheckSettings, pressures: list[float], temperatures: list[float]) -> dict:
    """The MD-robustness result of `runs` (see md_robustness)."""
    failed = [r for r in runs if r["failed"]]
    times = [r["time_to_failure_ps"] for r in failed]
    return {"passed": not failed, "trajectories": len(runs), "failed": len(failed),
            "failure_fraction": len(failed) / len(runs) if runs else 0.0,
            "median_time_to_failure_ps": float(np.median(times)) if times else None,
            "by_kind": dict(Counter(r["kind"] for r in failed)),
            "conditions": [{"pressure_GPa": p, "temperature_K": t}
                           for p, t in conditions(pressures, temperatures, settings.beyond)],
            "ps": settings.md_ps, "runs": runs}
