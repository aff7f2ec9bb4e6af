"""`dael explore`: entropy-biased MD over phases × pressures × temperatures, snapshots through the filter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from dael.calculators.registry import check_calculator
from dael.campaign.sections import K_GLOBAL
from dael.cli.common import app, checked, console, done, errors, key_values, read_inputs
from dael.explore.conditions import boxed_phases
from dael.explore.explorer import Explorer, grid
from dael.explore.md import BACKOFF, UNSTABLE, MDSettings
from dael.numeric.entropy import MIN_GAIN
from dael.numeric.natx import run_settings
from dael.selection.pool import dataset_state
from dael.selection.window import WINDOW
from dael.util.checks import natx_value, number
from dael.util.periodicity import VACUUM


@app.command()
def explore(
    seeds: Annotated[list[Path], typer.Argument(help="seed structures, one phase each (atoms.info['phase'] "
                                                     "or the file name)")],
    out: Annotated[Path, typer.Option(help="output folder (resumable)")] = Path("explore"),
    driver: Annotated[str, typer.Option(help="reference | chgnet | sevennet | allegro:PATH | ase:module:Class")]
    = "chgnet",
    driver_param: Annotated[list[str] | None, typer.Option(
        help="driver parameter key=value (value read as JSON, else text); repeatable")] = None,
    pressure: Annotated[list[float], typer.Option(help="pressures, GPa (repeat the option)")] = [0.0],  # noqa: B006
    temperature: Annotated[list[float], typer.Option(help="temperatures, K")] = [300.0],  # noqa: B006
    k_global: Annotated[list[float], typer.Option(help="global-entropy bias strengths: k_B·T per atom with "
                                                       "--bias-scale kT, eV with paper")] = [K_GLOBAL],  # noqa: B006
    k_local: Annotated[list[float], typer.Option(help="local-entropy bias strengths, eV")] = [0.0],  # noqa: B006
    bias_scale: Annotated[str, typer.Option(help="'kT' (size-independent, k in k_B·T per atom) or 'paper' "
                                                 "(E − k·log det, k in eV)")] = "kT",
    window: Annotated[float, typer.Option(help="energy window on candidates, eV/atom above the thermal "
                                               "expectation (0: off)")] = WINDOW,
    mode: Annotated[str, typer.Option(help="'dual' (each snapshot in the mode its disorder calls for), 'atom' "
                                           "or 'config'")] = "dual",
    order: Annotated[str, typer.Option(help="order of the trajectories: 'stratified' (phases, then conditions "
                                            "balanced), 'random' or 'grid'")] = "stratified",
    ensemble: Annotated[str, typer.Option(help="'nvt' (Langevin) or 'npt' (MTK; bulk phases only)")] = "nvt",
    slab_cell: Annotated[str, typer.Option(help="a slab's periodic cell: 'fixed' as given, or 'relax' to zero stress "
                                                "along its periodic axes (never along the vacuum)")] = "fixed",
    vacuum: Annotated[float, typer.Option(help="Å of vacuum on each side of a seed without a cell along its "
                                               "non-periodic axes (a molecule from an .xyz file)")] = VACUUM,
    steps: Annotated[int, typer.Option(help="biased MD steps per trajectory")] = 1000,
    snapshots: Annotated[int, typer.Option(help="snapshots per trajectory")] = 10,
    dt: Annotated[float, typer.Option(help="time step, fs")] = 1.0,
    friction: Annotated[float, typer.Option(help="Langevin friction, 1/fs")] = 0.01,
    relax_steps: Annotated[int, typer.Option(help="FIRE steps of the relaxation under pressure")] = 200,
    thermalize: Annotated[int, typer.Option(help="unbiased MD steps before the biased run")] = 100,
    unstable: Annotated[float, typer.Option(help="a phase whose thermalised cell quenches this many eV/atom below "
                                                 "its relaxed start runs unbiased (0: off)")] = UNSTABLE,
    backoff: Annotated[int, typer.Option(help="times a biased trajectory the blow-up guard stops goes back to its "
                                              "last sane state and runs on with its biases halved (0: it stops)")]
    = BACKOFF,
    random: Annotated[bool, typer.Option(help="random-MD baseline: k = 0, random snapshot steps")] = False,
    dataset: Annotated[Path | None, typer.Option(help="ASE database of the labelled dataset")] = None,
    state: Annotated[Path | None, typer.Option(help="saved entropy state instead of --dataset")] = None,
    min_gain: Annotated[float, typer.Option(help="smallest entropy gain ΔH to accept, nats")] = MIN_GAIN,
    workers: Annotated[int, typer.Option(help="trajectories run in parallel (one thread each)")] = 1,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[str, typer.Option(help="atoms per sphere, or 'auto': 1.5× the largest sphere of the seeds "
                                           "compressed to the highest pressure")] = "auto",
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    seed: Annotated[int, typer.Option(help="random seed of the first trajectory")] = 0,
) -> None:
    """Entropy-biased MD over phases × pressures × temperatures × k; snapshots through the global filter."""
    driver_params = key_values(driver_param, "--driver-param", "--driver-param sigma=2.3")
    phases = {}
    for path in seeds:  # named by atoms.info['phase'], else by the file (and the frame where it holds several)
        frames = read_inputs([path], ":")
        for n, atoms in enumerate(frames):
            name = str(atoms.info.get("phase", path.stem if len(frames) == 1 else f"{path.stem}{n}"))
            phases[name if name not in phases else f"{name}_{len(phases)}"] = atoms
    with checked():  # every option and grid point is checked before anything runs or is written
        phases, boxed = boxed_phases(phases, vacuum)
        structures = list(phases.values())
        check_calculator(driver, **driver_params)
        number("--min-gain", min_gain, infinite=True)
        number("--workers", workers, low=1, integer=True)
        md = MDSettings(temperature=temperature[0], ensemble=ensemble, steps=steps, snapshots=snapshots,
                        dt=dt, friction=friction, thermalize=thermalize, relax_steps=relax_steps,
                        unstable=unstable or None, slab_cell=slab_cell, backoff=backoff)
        atoms_per_sphere = natx_value(natx)
        settings = run_settings(structures, cutoff, atoms_per_sphere, "s", max(pressure, default=0.0))
        current = dataset_state(dataset, state, mode, eps, settings, 500, adopt=atoms_per_sphere is None,
                                say=console.print)
        settings = current.settings or settings
        if bias_scale not in ("kT", "paper"):
            raise ValueError(f"--bias-scale must be 'kT' or 'paper'; got {bias_scale!r}")
        number("--window (eV/atom, 0: off)", window, low=0)
        jobs = grid(phases, pressure, temperature, k_global, k_local, md, random_baseline=random, seed=seed,
                    bias_scale=bias_scale, order=order)
        explorer = Explorer(driver, current, out, min_gain, workers, settings, window=window or None,
                            driver_params=driver_params)
        for line in boxed:
            console.print(line)
        with console.status(Text(f"exploring: {len(jobs)} trajectories")) as status:
            result = explorer.run(jobs, lambda e: status.update(Text(
                f"{e['name']}: {e['status']}, {e['accepted']}/{e['snapshots']} accepted")))
    stopped = [t for t in result.trajectories if t["status"] != "ok"]
    for t in stopped:
        errors.print(f"{t['name']}: {t['status']}")
    failed = sum(t["status"].startswith("failed") for t in stopped)
    unbiased = [t for t in result.trajectories if "unstable_drop" in t]
    for t in unbiased:
        console.print(f"{t['name']}: unbiased, an unstable phase (its quench fell {t['unstable_drop']:.3f} eV/atom)")
    console.print(f"{len(result.trajectories)} trajectories ({len(stopped)} stopped early, {failed} failed, "
                  f"{len(unbiased)} unbiased), "
                  f"{result.accepted} snapshots accepted -> {out}/accepted.extxyz (all in {out}/snapshots.extxyz); "
                  f"log det {result.state.logdet:.3f} nats")
    done(failed)
