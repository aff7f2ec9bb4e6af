"""Distillation (issue 16, the paper's regime offline): an Allegro *base* trained on a teacher's labels over a broad
exploration of a campaign's phases, pressures and temperatures, to be fine-tuned in the loop (`train.base` in
campaign.yaml) and in the benchmark (`dael benchmark --from`).

The teacher is any MD driver (`dael.calculators.registry.make_calculator`): a foundation model ('chgnet', 'sevennet'),
a dael or nequip model ('allegro:PATH') or an ASE calculator ('ase:module:Class', with its parameters). `distill`
writes into one folder, every stage skipped when its output exists (delete an output to redo its stage and those
after it):

    pools/md/, pools/md.extxyz     plain (k = 0) random MD driven by the teacher over phases × pressures ×
                                   temperatures × `repeats` seeds, plus one melt per phase at `melt_factor` × the
                                   highest temperature and the lowest pressure (dael.explore.explorer; resumable per
                                   trajectory); every snapshot is kept
    pools/perturbed.extxyz         each phase relaxed by the teacher at each pressure, its isotropic strains
                                   (linear factors ISOTROPIC_STRAINS), `strains` random symmetric strains
                                   (|ε_ij| ≤ `max_strain`) and `rattles` rattled copies (Gaussian σ evenly
                                   0.05–0.15 Å)
    labels/all.extxyz              the teacher's energy (eV), forces (eV/Å) and stress (eV/Å³), computed in this
                                   process (dael.label.workers.compute; not through the oracle worker pool) and
                                   stored as SinglePointCalculator results; structures the teacher fails on are left out
    labels/train.extxyz, labels/holdout.extxyz    a seeded `holdout` share (10 %) held out
    model.nequip.zip, metrics.json, data/, run/, ...   dael.train.training's model directory is the folder itself, so
                                   `--from FOLDER` or `--from FOLDER/model.nequip.zip` fine-tunes the base
    distill.json                   the base's errors against the teacher on the holdout (and the mean
                                   baseline's), ms per energy + forces + stress call of base and teacher on a
                                   ≥ 64-atom cell of the first phase, counts, settings

Units: Å, eV, eV/Å, eV/Å³, GPa, K; errors in meV/atom, meV/Å, meV/Å³.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from dael.calculators.deploy import PACKAGE, load_calculator, time_calls
from dael.calculators.registry import DEVICE_VARIABLE, check_calculator, make_calculator
from dael.campaign.loop import fingerprint_settings
from dael.explore.anchors import anchors
from dael.explore.conditions import boxed_phases, check_phases
from dael.explore.explorer import Explorer, grid
from dael.explore.stability import md_starts
from dael.label.calculation import compute, describe
from dael.numeric.entropy import GlobalEntropy
from dael.train.settings import TrainSettings
from dael.train.training import train
from dael.util.files import mark, marked, write_extxyz

__all__ = ["ISOTROPIC_STRAINS", "REPORT", "DistillSettings", "distill", "perturbations", "teacher_labels"]

Say = Callable[[str], None]
REPORT = "distill.json"
ISOTROPIC_STRAINS = (0.90, 0.95, 1.05, 1.10)
"""Linear factors of the isotropic strains of each relaxed phase (±10 %)."""
RATTLE_RANGE = (0.05, 0.15)
"""Smallest and largest Gaussian σ of the rattles, Å."""


@dataclass
class DistillSettings:
    """What `distill` explores and how the base is trained.

    Model (dael.train.TrainSettings fields): l_max 2, one layer, 64 scalar and 16 tensor features, r_max 5 Å.
    Every model fine-tuned from the base (each benchmark model, each round of `dael run`) inherits its
    architecture, and round r > 1 runs its MD with it, so the base is the largest size tried that costs about
    what dael's round model (l_max 1, one layer, 16 / 8) costs to train. Measured (3 epochs on 13 8-atom Cu cells
    labelled by EMT, r_max 5 Å, one thread on a busy 2-core machine; s/epoch, then ms per call on 64 atoms):
    l1 1×16/8: 0.30, 18; l1 2×32/16: 0.45, 56; l2 1×32/16: 0.28, 32; l2 1×64/16: 0.29, 43; l2 1×64/32: 0.8, 61;
    l2 2×32/16: 2.4, 547 (two layers at l_max 2 cost ten times more). Its accuracy against the smaller sizes on a
    full pool is still to be measured. The rest of the training settings are the campaign's `train.settings`
    (stress weight, batch size, ...).
    """

    epochs: int = 200             # most epochs (early stopping may end sooner)
    r_max: float = 5.0            # cutoff, Å
    l_max: int = 2
    num_layers: int = 1
    num_scalar_features: int = 64
    num_tensor_features: int = 16
    repeats: int = 1              # MD seeds per (phase, pressure, temperature)
    steps: int | None = None      # MD steps per trajectory (None: the campaign's explore.steps)
    snapshots: int | None = None  # snapshots per trajectory (None: the campaign's explore.snapshots)
    melt_factor: float = 1.5      # the melt runs at this × the grid's highest temperature
    rattles: int = 4              # rattled copies per relaxed phase and pressure
    strains: int = 4              # random strains per relaxed phase and pressure
    max_strain: float = 0.10      # largest |ε_ij| of the random strains
    holdout: float = 0.1          # share of the labelled structures held out
    workers: int | None = None    # MD trajectories in parallel (None: the campaign's explore.workers)
    threads: int = 1              # torch threads of training and of the timings
    device: str = "cpu"           # 'cpu' or 'cuda': teacher, training and the base's inference

    def train_settings(self, seed: int = 0, extra: dict[str, Any] | None = None) -> Any:
        """The dael.train.TrainSettings of the base: `extra` (the campaign's train.settings) with this model."""
        model = {k: getattr(self, k) for k in ("epochs", "r_max", "l_max", "num_layers", "num_scalar_features",
                                               "num_tensor_features", "threads", "device")}
        return TrainSettings(**{**(extra or {}), "seed": seed, **model})

    def check(self) -> None:
        """One ValueError naming the first setting out of range (the training ones included)."""
        self.train_settings().check()
        problems = {
            "repeats must be >= 1": self.repeats < 1,
            "steps and snapshots must be >= 1 (or None: the campaign's)":
                any(v is not None and v < 1 for v in (self.steps, self.snapshots)),
            "melt_factor must be >= 1": not self.melt_factor >= 1,
            "rattles and strains must be >= 0": min(self.rattles, self.strains) < 0,
            "max_strain must lie in [0, 0.5)": not 0 <= self.max_strain < 0.5,
            "holdout must lie in (0, 1)": not 0 < self.holdout < 1,
            "workers must be >= 1 (or None: the campaign's)": self.workers is not None and self.workers < 1,
        }
        for message, bad in problems.items():
            if bad:
                raise ValueError(f"distill settings: {message}")


# ------------------------------------------------------------------------------------------------ structures


def perturbations(relaxed: list[Atoms], settings: DistillSettings, seed: int = 0) -> list[Atoms]:
    """`settings.strains` random symmetric strains (cell · (I + ε), |ε_ij| ≤ max_strain) and `settings.rattles`
    rattled copies (σ evenly over RATTLE_RANGE Å) of each structure; tagged kind 'random strain' / 'rattle'."""
    rng = np.random.default_rng(seed)
    out = []
    for atoms in relaxed:
        for _ in range(settings.strains):
            eps = rng.uniform(-settings.max_strain, settings.max_strain, (3, 3))
            strained = _variant(atoms, "random strain")
            strained.set_cell(atoms.cell.array @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
            out.append(strained)
        for sigma in np.linspace(*RATTLE_RANGE, settings.rattles):
            rattled = _variant(atoms, "rattle")
            rattled.positions += rng.normal(0.0, sigma, rattled.positions.shape)
            rattled.info["rattle_A"] = float(sigma)
            out.append(rattled)
    return out


def _variant(atoms: Atoms, kind: str) -> Atoms:
    copy = atoms.copy()
    copy.calc = None
    copy.info["kind"] = kind
    return copy


def teacher_labels(structures: list[Atoms], calc: Any, say: Say = print) -> tuple[list[Atoms], list[str]]:
    """(copies of `structures` carrying `calc`'s energy eV, forces eV/Å and stress eV/Å³ as SinglePointCalculator
    results, one line per structure it failed on); computed in this process, one structure at a time."""
    labelled, failures = [], []
    for n, atoms in enumerate(structures):
        try:
            results = compute(calc, atoms)
        except Exception as exc:  # a structure the teacher cannot label is left out, not fatal
            failures.append(f"structure {n} ({atoms.info.get('kind', '?')}): {describe(exc)}")
            continue
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, **results)
        labelled.append(copy)
        if (n + 1) % 200 == 0:
            say(f"distill: labelled {n + 1}/{len(structures)}")
    return labelled, failures


# ------------------------------------------------------------------------------------------------ stages


def _read(path: Path) -> list[Atoms]:
    """Every frame of an extxyz file (none when it is empty)."""
    return read(path, ":") if path.stat().st_size else []


def _stage(path: Path, what: str, make: Callable[[], list[Atoms]], say: Say) -> list[Atoms]:
    """The structures of `path`; made by `make` and written first when it does not exist."""
    if path.exists():
        say(f"distill: {what}: done before ({path})")
    else:
        write_extxyz(path, make())
    return _read(path)


@contextmanager
def _driver_device(device: str) -> Iterator[None]:
    """DAEL_DEVICE set to `device` inside the block, for the torch calculators that dael.calculators.registry builds
    (also in workers)."""
    previous = os.environ.get(DEVICE_VARIABLE)
    os.environ[DEVICE_VARIABLE] = device
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DEVICE_VARIABLE)
        else:
            os.environ[DEVICE_VARIABLE] = previous


def _explore(campaign: Any, seeds: dict[str, Atoms], teacher: str, folder: Path, s: DistillSettings,
             say: Say, teacher_params: dict[str, Any]) -> list[Atoms]:
    """Plain random MD over the grid and one melt per phase with the teacher; every snapshot, tagged kind."""
    e = campaign.explore
    md = e.md(steps=s.steps or e.steps, snapshots=s.snapshots or e.snapshots)
    jobs = [job for rep in range(s.repeats)
            for job in grid(seeds, e.pressures, e.temperatures, [0.0], md=md, random_baseline=True,
                            seed=campaign.seed + 10_000 * rep)]
    hot = s.melt_factor * max(e.temperatures)
    jobs += grid(seeds, [min(e.pressures)], [hot], [0.0], md=md, random_baseline=True, seed=campaign.seed + 90_000)
    say(f"distill: random MD with {teacher}, {len(jobs)} trajectories (one melt per phase at {hot:g} K)")
    state = GlobalEntropy("atom", campaign.filter.eps, fingerprint_settings(campaign, seeds))
    explorer = Explorer(teacher, state, folder, min_gain=-np.inf, workers=s.workers or e.workers,
                        driver_params=teacher_params)
    explorer.run(jobs, lambda t: say(f"  {t['name']}: {t['status']}, {t['snapshots']} snapshots"))
    snapshots = _read(folder / "snapshots.extxyz")
    for snap in snapshots:
        snap.info["kind"] = "melt" if snap.info["temperature_K"] > max(e.temperatures) else "md"
    return snapshots


def perturbed_phases(campaign: Any, seeds: dict[str, Atoms], teacher: str, s: DistillSettings, say: Say,
                     teacher_params: dict[str, Any]) -> list[Atoms]:
    """Each phase relaxed at each pressure, its isotropic strains, random strains and rattles."""
    say(f"distill: {len(seeds)} phase(s) relaxed with {teacher} at {len(campaign.explore.pressures)} pressure(s), "
        "strained and rattled")
    relaxed = anchors(seeds, teacher, campaign.explore.pressures, strains=ISOTROPIC_STRAINS, thermal=0,
                      driver_params=teacher_params, slab_cell=campaign.explore.slab_cell)
    structures = relaxed + perturbations([a for a in relaxed if a.info["kind"] == "relaxed"], s, campaign.seed)
    for atoms in structures:
        atoms.info["source"] = "distill"
    return structures


def _split(labelled: list[Atoms], share: float, seed: int) -> tuple[list[Atoms], list[Atoms]]:
    """(train, holdout): a seeded random `share` (at least 1) held out; at least 2 left to train on."""
    if len(labelled) < 3:
        raise ValueError(f"distill: only {len(labelled)} structures labelled by the teacher; at least 3 are needed "
                         "(raise steps, snapshots, repeats, rattles or strains)")
    order = np.random.default_rng(seed).permutation(len(labelled))
    n_hold = min(len(labelled) - 2, max(1, round(share * len(labelled))))
    hold = set(order[:n_hold].tolist())
    return ([a for k, a in enumerate(labelled) if k not in hold], [a for k, a in enumerate(labelled) if k in hold])


def distill(campaign: Any, seeds: dict[str, Atoms], out: str | os.PathLike, teacher: str = "chgnet",
            settings: DistillSettings | None = None, say: Say = print,
            teacher_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Distil `teacher` (built with `teacher_params`) into an Allegro base in the folder `out` (see the module
    docstring); resumes a previous run stage by stage. Returns distill.json's contents. ValueError for a bad teacher,
    teacher parameter, device or setting (before anything runs); RuntimeError when training fails."""
    s = settings or DistillSettings()
    s.check()
    teacher_params = dict(teacher_params or {})
    check_calculator(teacher, **teacher_params)
    seeds, boxed = boxed_phases(seeds, campaign.explore.vacuum)
    e = campaign.explore
    check_phases(seeds, e.pressures, e.ensemble, e.slab_cell)
    for line in boxed:
        say(f"distill: {line}")
    out = Path(out)
    report = out / REPORT
    finished = marked(report)
    if finished is not None:
        say(f"distill: done before: {out / PACKAGE} ({report})")
        return finished
    out.mkdir(parents=True, exist_ok=True)

    @cache
    def teacher_calc() -> Any:
        return make_calculator(teacher, **{"device": s.device, **teacher_params})

    with _driver_device(s.device):
        md = _stage(out / "pools" / "md.extxyz", "random MD",
                    lambda: _explore(campaign, seeds, teacher, out / "pools" / "md", s, say, teacher_params), say)
        perturbed = _stage(out / "pools" / "perturbed.extxyz", "relaxed, strained and rattled phases",
                           lambda: perturbed_phases(campaign, seeds, teacher, s, say, teacher_params), say)
    pool = md + perturbed

    def label() -> list[Atoms]:
        say(f"distill: labelling {len(pool)} structures with {teacher} in this process")
        labelled, failures = teacher_labels(pool, teacher_calc(), say)
        for line in failures[:5]:
            say(f"  the teacher failed on {line}")
        return labelled

    labelled = _stage(out / "labels" / "all.extxyz", "teacher labels", label, say)
    train_path, holdout_path = out / "labels" / "train.extxyz", out / "labels" / "holdout.extxyz"
    if not (train_path.exists() and holdout_path.exists()):
        train_set, holdout_set = _split(labelled, s.holdout, campaign.seed)
        write_extxyz(holdout_path, holdout_set)
        write_extxyz(train_path, train_set)

    if (out / PACKAGE).exists() and (out / "metrics.json").exists():
        say(f"distill: base model: done before ({out / PACKAGE})")
    else:
        ts = s.train_settings(campaign.seed, campaign.train.settings)
        say(f"distill: training the base (Allegro l_max {ts.l_max}, {ts.num_layers} layers, "
            f"{ts.num_scalar_features}/{ts.num_tensor_features} features, r_max {ts.r_max} Å) on {train_path}")
        train(train_path, out, settings=ts, test=holdout_path, progress=lambda line: say(f"  {line}"),
              overwrite=True)
    metrics = json.loads((out / "metrics.json").read_text())

    say("distill: timing base and teacher")
    first = next(iter(seeds))
    relaxed = [a for a in perturbed if a.info["kind"] == "relaxed" and a.info["phase"] == first]
    cell = md_starts({first: relaxed[0]}, teacher_calc(), float(relaxed[0].info["pressure_GPa"]))[0]
    base = load_calculator(out, device=s.device, threads=s.threads)
    speed = {"phase": first, "atoms": len(cell), "device": s.device, "threads": s.threads,
             "teacher_ms_per_call": time_calls(teacher_calc(), cell), "base_ms_per_call": time_calls(base, cell)}
    speed["speedup"] = speed["teacher_ms_per_call"] / speed["base_ms_per_call"]
    result = {
        "system": campaign.system, "teacher": teacher, "teacher_params": teacher_params, "model": PACKAGE,
        "structures": dict(Counter(str(a.info.get("kind", "?")) for a in labelled)),
        "label_failures": len(pool) - len(labelled), "n_train": metrics["n_train"] + metrics["n_val"],
        "n_holdout": metrics["test"]["structures"],
        "holdout": metrics["test"], "holdout_baseline": metrics["test_baseline"], "speed": speed,
        "epochs": metrics["epochs"], "train_seconds": metrics["train_seconds"], "settings": asdict(s),
    }
    mark(report, result)
    h = result["holdout"]
    say(f"distill: base {out / PACKAGE}: holdout E {h['energy_mae']:.2f} meV/atom, F {h['force_mae']:.1f} meV/Å"
        f"; {speed['base_ms_per_call']:.1f} ms vs the teacher's {speed['teacher_ms_per_call']:.1f} ms per call "
        f"on {len(cell)} atoms")
    return result
