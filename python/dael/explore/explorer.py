"""The explorer: entropy-biased MD over a grid of phases, pressures, temperatures and bias strengths, whose
snapshots pass through the global filter (docs/method.md §5).

For each (phase, pressure, temperature, k) a trajectory is run by `dael.explore.md.run_md` with the driver wrapped
in the entropy biases (global k_g, optional local k_l); trajectories run in parallel worker processes (one
native/torch thread each). As each finishes, its snapshots go through the streaming filter in order —
ΔH > min_gain joins the dataset state at once — so trajectories started later see them in their global
bias. The random-MD baseline is the same grid with k = 0 and snapshots at uniformly random steps.

Everything is kept in the output folder: one extxyz per finished trajectory (snapshots with phase,
pressure_GPa, temperature_K, k_local, k_global, mode, step, driver, source, gain, accepted), the state
after it, and a JSON line with its status; a rerun skips finished trajectories. `snapshots.extxyz` and
`accepted.extxyz` are rebuilt at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.io import read

from dael.calculators.registry import make_calculator
from dael.explore.conditions import check_phases
from dael.explore.md import GlobalEntropyBias, LocalEntropyBias, MDSettings, run_md
from dael.explore.order import GRID_TAGS, grid_key, trajectory_order
from dael.label.workers import process_pool
from dael.numeric.dual import DualEntropy, load_state
from dael.numeric.entropy import MIN_GAIN, GlobalEntropy
from dael.numeric.fingerprint import FingerprintSettings
from dael.numeric.natx import fingerprint_for
from dael.selection.stream import stream_filter
from dael.util.checks import number
from dael.util.files import concat_files, write_extxyz

State = GlobalEntropy | DualEntropy

@dataclass
class Job:
    """One trajectory of the grid."""

    phase: str
    structure: Atoms
    md: MDSettings
    k_global: float = 2.0
    k_local: float = 0.0
    source: str = "entropy"
    bias_scale: str = "kT"

    @property
    def grid_tags(self) -> dict[str, Any]:
        """The tags naming this trajectory's grid point (dael.explore.order.GRID_TAGS)."""
        values = (self.phase, self.md.pressure, self.md.temperature, self.k_global, self.k_local)
        return dict(zip(GRID_TAGS, values, strict=True))

    @property
    def name(self) -> str:
        return (f"{self.phase}_P{self.md.pressure:g}_T{self.md.temperature:g}_kg{self.k_global:g}"
                f"_kl{self.k_local:g}_{self.md.ensemble}_{self.source}_s{self.md.seed}")


def grid(phases: dict[str, Atoms], pressures: Sequence[float], temperatures: Sequence[float],
         k_global: Sequence[float], k_local: Sequence[float] = (0.0,), md: MDSettings | None = None,
         random_baseline: bool = False, seed: int = 0, bias_scale: str = "kT",
         order: str = "grid") -> list[Job]:
    """Every (phase, P GPa, T K, k_g, k_l eV) trajectory (k_g in `bias_scale`'s unit, see GlobalEntropyBias);
    random_baseline: the same with k = 0 and random snapshot steps (each combination once per distinct k,
    so equal step counts). order: 'grid' (phase by phase), 'stratified' or 'random', seeded by `seed`
    (dael.explore.order: 'stratified' makes the first trajectories of a budgeted run span the phases, then the
    pressures and temperatures of each). A phase whose periodicity does not admit a pressure or md's ensemble is a
    ValueError (dael.explore.conditions)."""
    md = md or MDSettings()
    check_phases(phases, pressures, md.ensemble, md.slab_cell)
    jobs = []
    for n, (phase, p, t, kg, kl) in enumerate(product(phases, pressures, temperatures, k_global, k_local)):
        settings = replace(md, pressure=float(p), temperature=float(t), seed=seed + n,
                           random_snapshots=random_baseline)
        if random_baseline:
            kg, kl = 0.0, 0.0
        number("k_global (eV)", kg)
        number("k_local (eV)", kl)
        jobs.append(Job(phase, phases[phase], settings, float(kg), float(kl),
                        "random" if random_baseline else "entropy", bias_scale))
    keys = [grid_key(j.grid_tags) for j in jobs]
    return [jobs[i] for i in trajectory_order(keys, order, np.random.default_rng(seed))]


_DRIVERS: dict[str, Calculator] = {}


def driver_tags(name: str, params: dict[str, Any] | None) -> dict[str, str]:
    """The tags naming an MD driver on its snapshots: `driver` (its registry name) and, when it has any,
    `driver_params` (its parameters as sorted JSON)."""
    return {"driver": name, **({"driver_params": json.dumps(params, sort_keys=True)} if params else {})}


def run_job(job: Job, driver_name: str, state: State, driver_params: dict[str, Any] | None = None) -> dict:
    """Run one trajectory in this process with the driver `make_calculator(driver_name, **driver_params)`;
    returns its snapshots (tagged) and status."""
    start = time.perf_counter()
    tags = driver_tags(driver_name, driver_params)
    key = json.dumps(tags, sort_keys=True)
    if key not in _DRIVERS:
        _DRIVERS[key] = make_calculator(driver_name, **(driver_params or {}))
    driver = _DRIVERS[key]
    calc: Calculator = driver
    if job.k_local:
        calc = LocalEntropyBias(calc, k=job.k_local)
    if job.k_global:
        # the bias works per atom; a dual state lends it its per-atom covariance
        dataset = state.atom if isinstance(state, DualEntropy) else state
        calc = GlobalEntropyBias(calc, dataset=dataset, k=job.k_global, mode=dataset.mode, scale=job.bias_scale,
                                 temperature=job.md.temperature)
    unbiased, halved = None, []
    try:
        traj = run_md(job.structure, driver, calc, job.md)
        snapshots, status, halved = traj.snapshots, traj.status, traj.halved
        if calc is not driver and not traj.biased:
            unbiased = round(traj.quench_drop, 4)
    except Exception as exc:  # a failing driver must not stop the other trajectories
        snapshots, status = [], f"failed: {type(exc).__name__}: {exc}"
    tags = {**job.grid_tags, "mode": state.mode, **tags, "source": job.source,
            "ensemble": job.md.ensemble, "bias_scale": job.bias_scale, "trajectory": job.name}
    for snap in snapshots:
        snap.calc = None
        snap.info.update(tags)
    seconds = time.perf_counter() - start
    return {"name": job.name, "snapshots": snapshots, "status": status, "seconds": seconds,
            "unstable_drop": unbiased, "bias_halved": halved}


@dataclass
class ExploreResult:
    """Per trajectory: name, status, snapshots, accepted, seconds; the final state; why the run stopped; notes
    (fingerprint settings that changed or grew)."""

    trajectories: list[dict] = field(default_factory=list)
    state: State | None = None
    stop: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(t["accepted"] for t in self.trajectories)


class Explorer:
    """Run a grid of jobs with `driver` (a name, see `dael.calculators.registry`, built with `driver_params`),
    filtering snapshots into `state`
    (a per-atom, per-configuration or dual state) with the streaming filter (dael.selection.stream). window:
    snapshots whose driver energy lies more than this many eV/atom above their thermal expectation (see
    dael.selection.window) are never accepted (None: no window)."""

    def __init__(self, driver: str, state: State, folder: str | os.PathLike, min_gain: float = MIN_GAIN,
                 workers: int = 1, settings: FingerprintSettings | None = None, window: float | None = None,
                 stop_after: int | None = None, driver_params: dict[str, Any] | None = None):
        self.driver, self.state, self.folder = driver, state, Path(folder)
        self.driver_params = dict(driver_params or {})
        self.min_gain = float(number("min_gain (nats)", min_gain, infinite=True))
        self.workers = max(1, int(workers))
        self.window, self.stop_after = window, stop_after
        if state.settings is None:
            if settings is None:
                raise ValueError("the dataset state has no fingerprint settings yet: pass settings=")
            state.settings = settings

    def _finish(self, result: dict, log) -> dict:
        """Filter one trajectory's snapshots into the state and commit them (extxyz, state, log line)."""
        snaps = result["snapshots"]
        natx = self.state.settings.natx
        gains, accepted, inside = stream_filter(self.state, snaps, self.window, self.min_gain)
        if isinstance(self.state, DualEntropy) and inside.any():
            for snap, mode in zip([s for s, ok in zip(snaps, inside, strict=True) if ok], self.state.last_modes,
                                  strict=True):
                snap.info["mode"] = str(mode)
        for snap, g, a, ok in zip(snaps, gains, accepted, inside, strict=True):
            snap.info.update({"gain": float(g), "accepted": bool(a), "in_window": bool(ok)})
        path = self.folder / "trajectories" / f"{result['name']}.extxyz"
        write_extxyz(path, snaps)
        self.state.save(self.folder / "state.npz")
        entry = {"name": result["name"], "status": result["status"], "snapshots": len(snaps),
                 "accepted": int(accepted.sum()), "outside_window": int(len(snaps) - inside.sum()),
                 "seconds": round(result["seconds"], 2), "logdet": self.state.logdet}
        if result.get("unstable_drop") is not None:  # the bias was off: an unstable phase (dael.explore.md.quench_drop)
            entry["unstable_drop"] = result["unstable_drop"]
        if result.get("bias_halved"):  # the guard stopped it and it went on with weaker biases (MDSettings.backoff)
            entry["bias_halved"] = result["bias_halved"]
        if self.state.settings.natx > natx:  # a snapshot's sphere outgrew natx: the state grew (dael.numeric.natx)
            entry["natx"] = [natx, self.state.settings.natx]
            self._result.notes.append(f"{result['name']}: a snapshot's fingerprint sphere held more than natx = "
                                      f"{natx} atoms; the entropy state grew to natx {self.state.settings.natx}")
        log.write(json.dumps(entry) + "\n")
        log.flush()
        os.fsync(log.fileno())
        return entry

    def run(self, jobs: Sequence[Job], progress: Callable[[dict], None] | None = None) -> ExploreResult:
        """Run the jobs not finished before; write snapshots.extxyz and accepted.extxyz."""
        (self.folder / "trajectories").mkdir(parents=True, exist_ok=True)
        log_path = self.folder / "trajectories.jsonl"
        done = {}
        if log_path.exists():
            for line in log_path.read_text().splitlines():
                entry = json.loads(line)
                done[entry["name"]] = entry
        result = ExploreResult(list(done.values()), self.state)
        self._result = result
        saved = self.folder / "state.npz"
        if done and saved.exists():
            self.state = self._resumed(load_state(saved), done)
        todo = [j for j in jobs if j.name not in done]
        with open(log_path, "a") as log:
            if self.workers == 1:
                for job in todo:
                    if self._enough():
                        break
                    entry = self._finish(run_job(job, self.driver, self.state, self.driver_params), log)
                    result.trajectories.append(entry)
                    if progress:
                        progress(entry)
            else:
                self._parallel(todo, log, result, progress)
        result.state = self.state
        ran = sum(j.name in {t["name"] for t in result.trajectories} for j in jobs)
        if ran < len(jobs):
            result.stop = (f"stopped after {ran} of {len(jobs)} trajectories: the {self.stop_after} candidates the "
                           f"budget asks for were accepted ({result.accepted})")
        else:
            result.stop = f"explored all {len(jobs)} trajectories: {result.accepted} candidates accepted" + (
                f", fewer than the {self.stop_after} the budget asks for" if self.stop_after is not None
                and result.accepted < self.stop_after else "")
        self._merge(jobs)
        return result

    def _resumed(self, saved: State, done: dict[str, dict]) -> State:
        """The state to resume with: the saved one (the finished trajectories' acceptances in it), at the longer
        natx of it and the given state; rebuilt from the given state and those acceptances when the cutoff,
        orbital or mode changed since (campaign.yaml edited between runs)."""
        given, old = self.state.settings, saved.settings
        same = (type(saved) is type(self.state) and getattr(saved, "mode", None) == getattr(self.state, "mode", None)
                and old is not None and (old.cutoff, old.orbital) == (given.cutoff, given.orbital))
        if same:
            saved.grow(max(old.natx, given.natx))
            return saved
        self._result.notes.append(f"the fingerprint settings changed since this exploration began ({old} -> {given}):"
                                  f" its state was rebuilt from the {len(done)} finished trajectories' acceptances")
        accepted = [a for name in done for a in self._snapshots(name) if a.info.get("accepted")]
        if accepted:
            self.state.add(fingerprint_for(self.state, accepted))
        return self.state

    def _snapshots(self, name: str) -> list[Atoms]:
        path = self.folder / "trajectories" / f"{name}.extxyz"
        return read(path, ":") if path.exists() and path.stat().st_size else []

    def _parallel(self, todo: list[Job], log, result: ExploreResult, progress) -> None:
        with process_pool(self.workers) as pool:
            queue = list(todo)
            running = set()
            while queue or running:
                while queue and len(running) < self.workers and not self._enough():
                    # each trajectory starts from the state as it is now (accepted snapshots included)
                    running.add(pool.submit(run_job, queue.pop(0), self.driver, self.state.copy(), self.driver_params))
                if not running:  # enough accepted: the queued trajectories are not run (was: a busy loop)
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    entry = self._finish(fut.result(), log)
                    result.trajectories.append(entry)
                    if progress:
                        progress(entry)

    def _enough(self) -> bool:
        """True once `stop_after` snapshots were accepted (trajectories under way still finish)."""
        return self.stop_after is not None and self._result.accepted >= self.stop_after

    def accepted_in_order(self) -> list[Atoms]:
        """The accepted snapshots in the order the filter took them (trajectories in the order they finished,
        snapshots in step order): a budget of N labels the first N."""
        out = []
        for line in (self.folder / "trajectories.jsonl").read_text().splitlines():
            entry = json.loads(line)
            if entry["accepted"]:
                out += [a for a in self._snapshots(entry["name"]) if a.info.get("accepted")]
        return out

    def _merge(self, jobs: Sequence[Job]) -> None:
        parts = [self.folder / "trajectories" / f"{j.name}.extxyz" for j in jobs]
        parts = [p for p in parts if p.exists() and p.stat().st_size]
        concat_files(parts, self.folder / "snapshots.extxyz")
        accepted = [a for p in parts for a in read(p, ":") if a.info.get("accepted")] if parts else []
        write_extxyz(self.folder / "accepted.extxyz", accepted)
