"""The `dael` command line: every command is declared here."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dael.campaign import K_GLOBAL
from dael.checks import number, output_file
from dael.distill import DistillSettings
from dael.window import WINDOW

EXIT_CODES = ("Exit codes: 0 everything done; 1 done, but some structures (label) or trajectories (explore) "
              "failed, see the summary; 2 bad input, options or environment (one 'error:' line says what); "
              "130 interrupted (rerun the same command to resume).")
app = typer.Typer(add_completion=False, no_args_is_help=True, epilog=EXIT_CODES,
                  help="dael: dataset-aware, entropy-maximized active learning of interatomic potentials.")
# user text (file names, messages) is printed literally, never as rich markup; piped output is not wrapped
_WIDTH = None if sys.stdout.isatty() else 1000
console = Console(markup=False, highlight=False, soft_wrap=True, width=_WIDTH)
errors = Console(stderr=True, markup=False, highlight=False, soft_wrap=True, width=_WIDTH)


def fail(message: str) -> typer.Exit:
    """Print one clear error line (the message literally) and return the exit to raise (status 2)."""
    errors.print(Text.assemble(("error: ", "bold red"), str(message)))
    return typer.Exit(2)


def done(failed: int) -> None:
    """End a command that ran to the end: exit status 1 when `failed` items failed (see EXIT_CODES)."""
    if failed:
        raise typer.Exit(1)


@contextmanager
def checked() -> Iterator[None]:
    """Turn the ValueError (bad input) or MemoryError (input too large) raised inside into `fail`."""
    try:
        yield
    except (ValueError, MemoryError) as exc:
        raise fail(str(exc)) from exc


def _read(paths: list[Path], index: str) -> list:
    """Every structure of every file (`dael.structures.read_structures`: any format ASE reads; of a dael
    dataset, its labelled rows but the test ones); a clear error names the bad file."""
    from dael.structures import read_structures

    try:
        return read_structures(paths, index)
    except ValueError as exc:
        raise fail(str(exc)) from exc


@app.command()
def fingerprint(
    files: Annotated[list[Path], typer.Argument(help="structure files (extxyz, ASE db, traj, POSCAR, ...)")],
    out: Annotated[Path, typer.Option(help="output .npz")] = Path("fingerprints.npz"),
    cutoff: Annotated[float, typer.Option(help="sphere radius, Å")] = 5.0,
    natx: Annotated[int, typer.Option(help="most atoms per sphere (0: size to the largest sphere)")] = 50,
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    per: Annotated[str, typer.Option(help="'atom' or 'config'")] = "atom",
    index: Annotated[str, typer.Option(help="which frames of each file (ASE index syntax)")] = ":",
) -> None:
    """Compute OMFP fingerprints of structure files and save them as .npz."""
    from dael.files import savez_atomic
    from dael.fingerprint import fingerprint as compute

    with checked():
        output_file(out)
    structures = _read(files, index)
    start = time.perf_counter()
    with checked():
        fp = compute(structures, cutoff=cutoff, natx=natx or None, orbital=orbital, per=per)
    seconds = time.perf_counter() - start
    savez_atomic(out, values=fp.values, offsets=fp.offsets, sphere=fp.sphere, cutoff=cutoff,
                 natx=fp.settings.natx, orbital=orbital, per=per)
    console.print(f"{len(structures)} structures, {len(fp.sphere)} atoms -> {out} "
                  f"(values {fp.values.shape}, natx {fp.settings.natx}) in {seconds:.2f} s")


Mode = Annotated[str, typer.Option(help="'atom' (per-atom samples, disordered) or 'config' (per structure)")]
Device = Annotated[str, typer.Option(help="'cpu' or 'cuda': where training and the model's inference run")]


@app.command("filter")
def filter_(
    pool: Annotated[list[Path], typer.Argument(help="candidate files (extxyz, ASE db, traj, ...)")],
    budget: Annotated[int, typer.Option(help="most structures to keep")] = 100,
    dataset: Annotated[Path | None, typer.Option(help="ASE database of the labelled dataset")] = None,
    state: Annotated[Path | None, typer.Option(help="saved entropy state instead of --dataset")] = None,
    mode: Mode = "atom",
    min_gain: Annotated[float, typer.Option(help="smallest entropy gain ΔH worth keeping, nats")] = 0.01,
    method: Annotated[str, typer.Option(
        help="'stream' (in order; the authors'), or greedy by ΔH as in dael.select: 'auto' (exact up to 5000 "
             "shortlisted, lazy beyond), 'exact' or 'lazy'")] = "stream",
    out: Annotated[Path, typer.Option(help="selected structures (extxyz)")] = Path("selected.extxyz"),
    chunk: Annotated[int, typer.Option(help="structures per chunk (bounds memory)")] = 500,
    shortlist: Annotated[int, typer.Option(help="greedy: first-pass candidates kept (0: 20×budget)")] = 0,
    index: Annotated[Path | None, typer.Option(help="novelty index folder (pre-filter)")] = None,
    min_distance: Annotated[float, typer.Option(help="skip structures closer than this to the index")] = 0.0,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address, or 'local'")] = None,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[int, typer.Option(help="fingerprint length (0: 1.5× the first chunk's largest sphere)")] = 0,
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    save_state: Annotated[Path | None, typer.Option(help="write the final entropy state here")] = None,
) -> None:
    """Keep the pool structures that raise the dataset's global entropy (streaming, resumable)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from dael.index import NoveltyIndex
    from dael.natx import run_settings
    from dael.screen import Screen, check_options, chunks, dataset_state, iter_pool

    with checked():  # everything is checked before the pool is read or anything is written
        check_options(budget, min_gain, method, chunk, min_distance)
        output_file(out)
        if save_state is not None:
            output_file(save_state, "--save-state")
        first = [a for _, _, a in next(chunks(iter_pool(pool), chunk), [])]
        if not first:
            raise fail("the pool holds no structures")
        settings = run_settings(first, cutoff, natx, orbital)
        current = dataset_state(dataset, state, mode, eps, settings, chunk, adopt=natx == 0, say=console.print)
        settings = current.settings or settings
        novelty = NoveltyIndex.load(index, settings) if index is not None else None
        before = current.logdet
        screen = Screen(pool, out, current, settings, budget, min_gain, method, chunk, shortlist or None,
                        novelty, min_distance, dask)
        with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("screening", total=None)
            result = screen.run(lambda seen, kept: bar.update(
                task, description=f"screened {seen:,} structures, kept {kept:,}"), say=console.print)
    if save_state is not None:
        result.state.save(save_state)
    rate = result.seen / max(result.seconds, 1e-9)
    console.print(f"{len(result.picks)} of {result.seen:,} structures kept -> {out} ({method}, mode {mode}, "
                  f"natx {settings.natx}); {result.skipped:,} skipped by novelty; log det {before:.3f} -> "
                  f"{result.state.logdet:.3f} nats; {result.seconds:.1f} s ({rate:,.0f} structures/s)")


@app.command()
def entropy(
    files: Annotated[list[Path], typer.Argument(help="structure files (extxyz, ASE db, traj, ...)")],
    k: Annotated[int, typer.Option(help="k-th neighbour of the kNN entropy")] = 1,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[int, typer.Option(help="fingerprint length (0: largest sphere)")] = 0,
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    index: Annotated[str, typer.Option(help="which frames of each file (ASE index syntax)")] = ":",
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
) -> None:
    """Global entropy (log det of the fingerprint covariance) and kNN entropy, per atom and per structure."""
    from dael.entropy import GlobalEntropy, knn_entropy
    from dael.fingerprint import fingerprint as compute

    with checked():
        number("--k", k, low=1, integer=True)
    structures = _read(files, index)
    modes = {}
    with checked():
        fps = compute(structures, cutoff=cutoff, natx=natx or None, orbital=orbital)
        for mode in ("atom", "config"):
            state = GlobalEntropy(mode, eps)
            state.add(fps)
            samples, _ = state.blocks(fps)
            modes[mode] = {"samples": state.n, "dimension": state.dim, "logdet": state.logdet,
                           "knn_entropy": knn_entropy(samples, k) if len(samples) > k else None}
    if json_:
        _print_json({"structures": len(structures), "cutoff": cutoff, "natx": fps.settings.natx,
                     "orbital": orbital, "eps": eps, "k": k, "units": "nats", "modes": modes})
        return
    table = Table(title=f"Entropies of {len(structures)} structures (OMFP {orbital}, {cutoff} Å, "
                        f"natx {fps.settings.natx}), nats")
    for col in ("mode", "samples", "dimension", "log det Σ", f"kNN entropy (k={k})"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode, m in modes.items():
        knn = "n/a (too few samples)" if m["knn_entropy"] is None else f"{m['knn_entropy']:.4f}"
        table.add_row(mode, str(m["samples"]), str(m["dimension"]), f"{m['logdet']:.4f}", knn)
    console.print(table)


def _print_json(data: dict) -> None:
    """One JSON object on stdout, unwrapped, for scripts."""
    typer.echo(json.dumps(data))


@app.command()
def train(
    db: Annotated[Path, typer.Option(help="labelled dataset: a dael dataset (its labelled rows but the 'test' "
                                           "ones), an ASE database or extxyz")],
    out: Annotated[Path, typer.Option(help="model directory to create (e.g. models/round-03)")],
    from_: Annotated[str | None, typer.Option(
        "--from", help="warm start: a local .nequip.zip (foundation model or previous round), a .ckpt or a "
                       "dael model directory; hub ids are not fetched")] = None,
    epochs: Annotated[int, typer.Option(help="most epochs (early stopping may end sooner)")] = 200,
    seed: Annotated[int, typer.Option(help="seed of the split, shuffling and initialisation")] = 0,
    test: Annotated[Path | None, typer.Option(
        help="extra labelled structures to evaluate on (of a dael dataset: its 'test' rows)")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate (default: 1e-2 new, 3e-3 warm)")] = None,
    stress_weight: Annotated[float, typer.Option(help="loss weight of stress (energy, forces: 1)")] = 100.0,
    val_fraction: Annotated[float, typer.Option(help="share of structures held out for validation")] = 0.1,
    threads: Annotated[int, typer.Option(help="torch/OpenMP threads of the training process")] = 1,
    device: Device = "cpu",
    overwrite: Annotated[bool, typer.Option(help="replace a previous run in --out")] = False,
) -> None:
    """Train an Allegro potential on a labelled dataset (new, or fine-tuned with --from); writes the model
    directory with model.nequip.zip and metrics.json."""
    from dael.train import TrainSettings
    from dael.train import train as run

    try:
        settings = TrainSettings(epochs=epochs, seed=seed, lr=lr, stress_weight=stress_weight,
                                 val_fraction=val_fraction, threads=threads, device=device)
        result = run(db, out, parent=from_, settings=settings, test=test, overwrite=overwrite,
                     progress=console.print)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    table = Table(title=f"Errors of {result.package} (MAE / RMSE)")
    for col in ("set", "structures", "E meV/atom", "F meV/Å", "S meV/Å³"):
        table.add_column(col, justify="right" if col != "set" else "left")
    for name in ("validation", "validation_baseline", "test", "test_baseline"):
        if name in result.metrics:
            m = result.metrics[name]
            cells = [f"{m[f'{q}_mae']:.{d}f} / {m[f'{q}_rmse']:.{d}f}" if m[f"{q}_mae"] is not None else "n/a"
                     for q, d in (("energy", 2), ("force", 1), ("stress", 2))]
            table.add_row(name.replace("_", " "), str(m["structures"]), *cells)
    console.print(table)


@app.command()
def explore(
    seeds: Annotated[list[Path], typer.Argument(help="seed structures, one phase each (atoms.info['phase'] "
                                                     "or the file name)")],
    out: Annotated[Path, typer.Option(help="output folder (resumable)")] = Path("explore"),
    driver: Annotated[str, typer.Option(help="reference | chgnet | sevennet | allegro:PATH | ase:mod:Class")]
    = "chgnet",
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
    ensemble: Annotated[str, typer.Option(help="'nvt' (Langevin) or 'npt' (MTK)")] = "nvt",
    steps: Annotated[int, typer.Option(help="biased MD steps per trajectory")] = 1000,
    snapshots: Annotated[int, typer.Option(help="snapshots per trajectory")] = 10,
    dt: Annotated[float, typer.Option(help="time step, fs")] = 1.0,
    friction: Annotated[float, typer.Option(help="Langevin friction, 1/fs")] = 0.01,
    relax_steps: Annotated[int, typer.Option(help="FIRE steps of the relaxation under pressure")] = 200,
    thermalize: Annotated[int, typer.Option(help="unbiased MD steps before the biased run")] = 100,
    random: Annotated[bool, typer.Option(help="random-MD baseline: k = 0, random snapshot steps")] = False,
    dataset: Annotated[Path | None, typer.Option(help="ASE database of the labelled dataset")] = None,
    state: Annotated[Path | None, typer.Option(help="saved entropy state instead of --dataset")] = None,
    min_gain: Annotated[float, typer.Option(help="smallest entropy gain ΔH to accept, nats")] = 0.01,
    workers: Annotated[int, typer.Option(help="trajectories run in parallel (one thread each)")] = 1,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[int, typer.Option(help="fingerprint length (0: 1.5× the largest sphere of the seeds "
                                                     "compressed to the highest pressure)")] = 0,
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    seed: Annotated[int, typer.Option(help="random seed of the first trajectory")] = 0,
) -> None:
    """Entropy-biased MD over phases × pressures × temperatures × k; snapshots through the global filter."""
    from dael.explore import Explorer, check_driver, grid
    from dael.md import MDSettings
    from dael.natx import run_settings
    from dael.screen import dataset_state

    structures = _read(seeds, ":")
    phases = {}
    for n, atoms in enumerate(structures):
        name = str(atoms.info.get("phase", seeds[0].stem if len(structures) == 1 else f"seed{n}"))
        phases[name if name not in phases else f"{name}{n}"] = atoms
    with checked():  # every option and grid point is checked before anything runs or is written
        check_driver(driver)
        number("--min-gain", min_gain, infinite=True)
        number("--workers", workers, low=1, integer=True)
        md = MDSettings(temperature=temperature[0], ensemble=ensemble, steps=steps, snapshots=snapshots,
                        dt=dt, friction=friction, thermalize=thermalize, relax_steps=relax_steps)
        settings = run_settings(structures, cutoff, natx, "s", max(pressure, default=0.0))
        current = dataset_state(dataset, state, mode, eps, settings, 500, adopt=natx == 0, say=console.print)
        settings = current.settings or settings
        if bias_scale not in ("kT", "paper"):
            raise ValueError(f"--bias-scale must be 'kT' or 'paper'; got {bias_scale!r}")
        number("--window (eV/atom, 0: off)", window, low=0)
        jobs = grid(phases, pressure, temperature, k_global, k_local, md, random_baseline=random, seed=seed,
                    bias_scale=bias_scale)
        explorer = Explorer(driver, current, out, min_gain, workers, settings, window=window or None)
        with console.status(Text(f"exploring: {len(jobs)} trajectories")) as status:
            result = explorer.run(jobs, lambda e: status.update(Text(
                f"{e['name']}: {e['status']}, {e['accepted']}/{e['snapshots']} accepted")))
    stopped = [t for t in result.trajectories if t["status"] != "ok"]
    for t in stopped:
        errors.print(f"{t['name']}: {t['status']}")
    failed = sum(t["status"].startswith("failed") for t in stopped)
    console.print(f"{len(result.trajectories)} trajectories ({len(stopped)} stopped early, {failed} failed), "
                  f"{result.accepted} snapshots accepted -> {out}/accepted.extxyz (all in {out}/snapshots.extxyz); "
                  f"log det {result.state.logdet:.3f} nats")
    done(failed)


def _oracle_params(items: list[str] | None) -> dict:
    """``--param key=value`` pairs; a value is JSON when it parses (500, true, {"Si": ...}), else text."""
    import json

    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise fail(f"--param {item!r}: expected key=value, e.g. --param system=Si or --param ecut=500")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _fingerprint_option(text: str | None):
    """``CUTOFF,NATX,ORBITAL`` (e.g. 5.0,50,s) as FingerprintSettings; None when not given."""
    from dael.fingerprint import FingerprintSettings

    if text is None:
        return None
    parts = text.split(",")
    try:
        return FingerprintSettings(float(parts[0]), int(parts[1]), parts[2].strip())
    except (IndexError, ValueError) as exc:
        raise ValueError(f"--fingerprint {text!r}: expected CUTOFF,NATX,ORBITAL (5.0,50,s); {exc}") from None


@app.command("label")
def label_(
    db: Annotated[Path, typer.Option(help="the dataset: an ASE SQLite database (.db), created if missing")],
    candidates: Annotated[list[Path] | None, typer.Argument(
        help="candidate files (extxyz, ASE db, ...); none: only label the pending rows")] = None,
    oracle: Annotated[str, typer.Option(help="'reference', 'gpaw', 'vasp', 'qe' or 'ase:module:Class'")]
    = "reference",
    param: Annotated[list[str] | None, typer.Option(
        help="oracle parameter key=value (value read as JSON, else text); repeatable")] = None,
    workers: Annotated[int | None, typer.Option(
        help="worker processes, 1 OpenMP thread each (0: this process) [default: 1]")] = None,
    dask: Annotated[str | None, typer.Option(
        help="Dask scheduler address (e.g. a dask-jobqueue SLURMCluster's), or 'local'")] = None,
    source: Annotated[str, typer.Option(help="entropy | random | anchor | test")] = "entropy",
    round_: Annotated[int, typer.Option("--round", help="active-learning round")] = 0,
    campaign: Annotated[str, typer.Option(help="campaign name")] = "default",
    timeout: Annotated[float | None, typer.Option(help="seconds per oracle call [default: no limit]")] = None,
    retries: Annotated[int, typer.Option(help="extra calls after a failure that is not bad input")] = 0,
    retry_failed: Annotated[bool, typer.Option(help="put this oracle's failed rows back to pending")] = False,
    relabel_failed: Annotated[bool, typer.Option(
        help="give every failed row, whatever oracle failed on it, to this --oracle/--param (pending)")] = False,
    relabel_pending: Annotated[bool, typer.Option(
        help="give the rows pending for other oracles to this --oracle/--param")] = False,
    fingerprint: Annotated[str | None, typer.Option(
        help="fingerprint settings the selection used, CUTOFF,NATX,ORBITAL (e.g. 5.0,50,s)")] = None,
) -> None:
    """Label candidate structures with an oracle into the dataset; rerun the same command to resume."""
    from collections import Counter

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dael.dataset import SOURCES, Dataset, oracle_spec
    from dael.label import check_options, label_dataset
    from dael.oracles import make_oracle

    params = _oracle_params(param)
    if workers is not None and dask is not None:
        raise fail("give --workers or --dask, not both")
    workers = 1 if workers is None else workers
    if not candidates and not db.exists():
        raise fail(f"{db} does not exist yet: give the candidate files to label")
    try:  # everything is checked before the dataset is touched
        check_options(workers, timeout, retries)
        if source not in SOURCES:
            raise ValueError(f"--source must be one of {', '.join(SOURCES)}; got {source!r}")
        settings = _fingerprint_option(fingerprint)
        make_oracle(oracle, **params)
        dataset = Dataset(db)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    structures = _read(candidates, ":") if candidates else []
    spec = oracle_spec(oracle, params)
    try:
        added = dataset.add(structures, oracle=spec, campaign=campaign, round=round_, source=source,
                            fingerprint=settings)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if retry_failed:
        dataset.retry_failed(spec)
    statuses = ("failed",) * relabel_failed + ("pending",) * relabel_pending
    if statuses:
        moved = dataset.reassign(spec, statuses) + (dataset.retry_failed(spec) if relabel_failed else 0)
        console.print(f"{moved} {' and '.join(statuses)} rows given to {spec}")
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"labelling with {oracle}", total=None)
        try:
            summary = label_dataset(
                dataset, oracle, params, workers=workers, dask=dask, timeout=timeout, retries=retries,
                progress=lambda s, total: bar.update(task, total=total, completed=s.labeled + s.failed,
                                                     description=f"labelling, {s.failed} failed"))
        except KeyboardInterrupt:
            bar.stop()
            errors.print("interrupted: every finished label is saved; rerun the same command to resume")
            raise typer.Exit(130) from None
        except (OSError, RuntimeError) as exc:  # no Dask scheduler there, workers that cannot start
            bar.stop()
            raise fail(f"labelling stopped ({exc}); finished labels are saved, rerun to resume") from exc
    counts = dataset.counts()
    rate = (summary.labeled + summary.failed) / max(summary.seconds, 1e-9)
    console.print(f"{summary.labeled} labeled, {summary.failed} failed, {len(added.duplicates)} duplicates "
                  f"skipped, {summary.seconds:.1f} s ({rate:.1f} structures/s) -> {db} (rows: "
                  f"{counts['labeled']} labeled, {counts['failed']} failed, {counts['pending']} pending)")
    for message, n in Counter(summary.errors).most_common(3):
        console.print(Text.assemble((f"  {n} failed: ", "yellow"), message))
    if summary.failed:
        console.print("  after fixing the cause, --retry-failed labels them again with this oracle, "
                      "--relabel-failed with the --oracle/--param given")
    if counts["pending"]:
        others = sorted({a.info["oracle"] for a in dataset.structures("pending")})
        console.print(f"  {counts['pending']} rows wait for other oracles ({'; '.join(others)}): rerun with "
                      "that --oracle and --param, or give them to this one with --relabel-pending")
    done(summary.failed)


@app.command()
def export(
    db: Annotated[Path, typer.Option(help="the dataset (ASE database)")],
    out: Annotated[Path, typer.Option(help="extxyz with energy, forces, stress (nequip reads it as is)")]
    = Path("train.extxyz"),
    status: Annotated[str, typer.Option(help="labeled | pending | failed | all")] = "labeled",
    source: Annotated[list[str] | None, typer.Option(help="only rows of this source; repeatable")] = None,
    campaign: Annotated[str | None, typer.Option(help="only rows of this campaign")] = None,
    round_: Annotated[int | None, typer.Option("--round", help="only rows of this round")] = None,
) -> None:
    """Write dataset rows to an extxyz training file."""
    from dael.dataset import Dataset

    if not db.is_file():
        raise fail(f"{db}: no such dataset")
    query = {k: v for k, v in {"campaign": campaign, "round": round_}.items() if v is not None}
    try:
        output_file(out)
        n = Dataset(db).export(out, None if status == "all" else status, source, **query)
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{n} structures -> {out}")


@app.command()
def init(
    system: Annotated[str, typer.Argument(help="preset: Si, C or NaCl (any case)")],
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite an existing campaign.yaml")] = False,
) -> None:
    """Write a campaign (campaign.yaml + seeds.extxyz) with the preset of SYSTEM."""
    from dael.campaign import phases, preset, write

    with checked():
        campaign = preset(system)
        path = write(dir, campaign, phases(system), force=force)
    console.print(f"{path}: {campaign.system} campaign; edit it, then `dael run --dir {dir}`")


@app.command()
def run(
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    rounds: Annotated[int, typer.Option(help="stop after this many rounds (0: until the budget is spent)")] = 0,
) -> None:
    """Explore → filter → label → train until the budget is spent (resumable: rerun after any interruption)."""
    from dael.loop import run as run_campaign

    with checked():
        state = run_campaign(dir, say=console.print, max_rounds=rounds or None)
    _print_status(state)


@app.command()
def status(
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
) -> None:
    """Round, budget used, dataset, entropy, latest model errors and failures of a campaign."""
    from dael.loop import status as campaign_status

    with checked():
        state = campaign_status(dir)
    if json_:
        _print_json(state)
    else:
        _print_status(state)


def _print_status(state: dict) -> None:
    table = Table(title=f"campaign: {state['system']}", show_header=False)
    logdet = "n/a" if state["logdet"] is None else f"{state['logdet']:.3f} nats"
    validation = state["validation"] or {}
    rows = {"round": state["round"], "budget used": f"{state['budget']['used']} / {state['budget']['total']}",
            "dataset": ", ".join(f"{k} {v}" for k, v in state["dataset"].items()) or "empty",
            "log det (dataset)": logdet, "latest model": state["model"] or "none",
            "validation MAE": ", ".join(f"{k} {v:.2f}" for k, v in validation.items() if v is not None) or "n/a",
            "label failures": state["label_failures"],
            "trajectories stopped early": len(state["trajectories_stopped"])}
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)
    for line in state["trajectories_stopped"][:10]:
        errors.print(f"  {line}")


@app.command()
def benchmark(
    system: Annotated[str, typer.Argument(help="preset (Si, C, NaCl) or a campaign folder")],
    out: Annotated[Path | None, typer.Option(help="benchmark folder (default: benchmark-SYSTEM)")] = None,
    sizes: Annotated[list[int] | None, typer.Option(help="training-set sizes (repeat the option)")] = None,
    draws: Annotated[int, typer.Option(help="independent draws per size (0: the config's)")] = 0,
    epochs: Annotated[int, typer.Option(help="training epochs per model, at least (0: the config's)")] = 0,
    min_steps: Annotated[int | None, typer.Option(
        help="optimizer steps per model, at least [default: the config's]")] = None,
    anchor_fraction: Annotated[float | None, typer.Option(
        help="anchor share of the mixed pool, 0-1 [default: the config's]")] = None,
    repeats: Annotated[int, typer.Option(help="MD seeds per grid point of the pools (0: the config's)")] = 0,
    strategies: Annotated[str, typer.Option(help="selection strategies, comma-separated: stream, stream-fill, mixed, "
                                                 "greedy-atom, greedy-config, entropy-random, random, direct, "
                                                 "quests-msc, quests-fps, quests-kmeans, or 'all'")]
    = "stream,stream-fill,mixed,entropy-random,random",
    from_: Annotated[str | None, typer.Option(
        "--from", help="fine-tune every model from this base: a .nequip.zip or a dael model directory (e.g. "
                       "`dael distill`'s folder) [default: train from scratch]")] = None,
    device: Annotated[str | None, typer.Option(
        help="'cpu' or 'cuda' for training and inference [default: the campaign's train.settings, else cpu]")]
    = None,
) -> None:
    """Selection strategies vs random MD on the same pools and training: learning curves, MD stability and an
    HTML report."""
    from dael.benchmark import run_benchmark
    from dael.campaign import load_or_preset
    from dael.train import check_device

    try:
        campaign, seeds = load_or_preset(system)
        if device is not None:
            campaign.train.settings["device"] = device
        check_device(campaign.train.settings.get("device", "cpu"))
        b = campaign.benchmark
        b.sizes = sizes or b.sizes
        b.draws = draws or b.draws
        b.epochs = epochs or b.epochs
        b.min_steps = b.min_steps if min_steps is None else min_steps
        b.anchor_fraction = b.anchor_fraction if anchor_fraction is None else anchor_fraction
        b.repeats = repeats or b.repeats
        campaign.check()
        from dael.strategies import STRATEGIES, check_strategies

        chosen = check_strategies(list(STRATEGIES) if strategies == "all" else
                                  [x.strip() for x in strategies.split(",") if x.strip()])
        report = run_benchmark(campaign, seeds, out or Path(f"benchmark-{campaign.system}"),
                               say=console.print, strategies=chosen, base=from_)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"report: {report}")


_DISTILL = DistillSettings()


@app.command()
def distill(
    system: Annotated[str, typer.Argument(help="preset (Si, C, NaCl) or a campaign folder")],
    teacher: Annotated[str, typer.Option(help="chgnet | sevennet | allegro:PATH | ase:module:Class | reference")]
    = "chgnet",
    out: Annotated[Path, typer.Option(help="folder of the base model (resumable)")] = Path("base"),
    device: Device = "cpu",
    epochs: Annotated[int, typer.Option(help="most training epochs")] = _DISTILL.epochs,
    steps: Annotated[int, typer.Option(help="MD steps per trajectory (0: the campaign's)")] = 0,
    snapshots: Annotated[int, typer.Option(help="snapshots per trajectory (0: the campaign's)")] = 0,
    repeats: Annotated[int, typer.Option(help="MD seeds per phase, pressure and temperature")] = _DISTILL.repeats,
    rattles: Annotated[int, typer.Option(help="rattled copies (0.05-0.15 Å) per relaxed phase and pressure")]
    = _DISTILL.rattles,
    strains: Annotated[int, typer.Option(help="random strains (up to ±10 %) per relaxed phase and pressure")]
    = _DISTILL.strains,
    r_max: Annotated[float, typer.Option(help="cutoff of the base, Å")] = _DISTILL.r_max,
    l_max: Annotated[int, typer.Option(help="largest rotation order of the base")] = _DISTILL.l_max,
    num_layers: Annotated[int, typer.Option(help="Allegro layers")] = _DISTILL.num_layers,
    scalar_features: Annotated[int, typer.Option(help="scalar features")] = _DISTILL.num_scalar_features,
    tensor_features: Annotated[int, typer.Option(help="tensor features")] = _DISTILL.num_tensor_features,
    workers: Annotated[int, typer.Option(help="MD trajectories in parallel (0: the campaign's)")] = 0,
    threads: Annotated[int, typer.Option(help="torch threads of training and timing")] = _DISTILL.threads,
) -> None:
    """Distil a teacher (foundation model or any ASE calculator) into an Allegro base: broad random MD, melts,
    strains and rattles labelled by the teacher, a 10 % holdout; writes model.nequip.zip and distill.json
    (errors against the teacher, speed of both). Fine-tune it with `--from OUT` or campaign.yaml's train.base."""
    from dael.campaign import load_or_preset
    from dael.distill import distill as run_distill

    settings = DistillSettings(epochs=epochs, steps=steps or None, snapshots=snapshots or None, repeats=repeats,
                               rattles=rattles, strains=strains, r_max=r_max, l_max=l_max, num_layers=num_layers,
                               num_scalar_features=scalar_features, num_tensor_features=tensor_features,
                               workers=workers or None, threads=threads, device=device)
    try:
        campaign, seeds = load_or_preset(system)
        result = run_distill(campaign, seeds, out, teacher, settings,
                             say=lambda line: console.print(line, markup=False, highlight=False))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"base model: {out / result['model']} (errors and timings: {out / 'distill.json'})")


@app.command()
def demo(dir: Annotated[Path, typer.Option(help="folder of the demo campaign")] = Path("demo")) -> None:
    """A small real campaign on Si with the embedded reference oracle: two rounds of explore → filter →
    label → train, then a small entropy-vs-random benchmark and its HTML report (about 10 min on 2 cores)."""
    from dael.demo import run_demo

    run_demo(dir, say=console.print, on_rounds=_print_status)


if __name__ == "__main__":
    app()
