"""Allegro training and fine-tuning (nequip 0.19 / allegro 0.8; `pip install "dael[train]"`).

Beside it: `dael.train.nequip_config` (the nequip-train config), `dael.calculators.deploy` (models as ASE
calculators, packaging, warm-start paths) and `dael.train.metrics` (labelled structures, the mean baseline, errors).

`train(dataset, out)` writes a *model directory*; everything the run used sits beside what it made:

    data/{train,val,test}.extxyz   labelled structures, split by `TrainSettings.seed` (test: if given)
    config.yaml                    the `nequip-train` (Hydra) config; run/ is its run dir (best.ckpt)
    model.nequip.zip               the best checkpoint, packaged: self-contained; deploy it or warm-start the
                                   next round from it (`--from out/` or `--from out/model.nequip.zip`)
    parent.nequip.zip              only when warm-started from a checkpoint: that checkpoint, packaged
    train.log, history.json        nequip-train's whole output; one record per epoch
    metrics.json                   errors on validation (and test) beside the mean baseline's, timings

Training runs `nequip-train` and then packages its best checkpoint in one subprocess (`dael.train.nequip_run`;
metrics.json's `train_seconds` covers both) with `threads` OpenMP/torch threads (default 1: on this busy 2-core
machine two threads never helped: 0.21-0.43 s/epoch with one and 0.21-0.73 with two on 43 8-atom cells; 5.5-7 ms
against 17-30 ms per 64-atom call; `benches/train.py`). Losses are Huber terms on the per-atom energy (δ 0.01 eV),
forces (δ 0.01 eV/Å) and stress (δ 0.1 eV/Å³), weighted `energy_weight` : 1 : `stress_weight`, as the authors
fine-tune (docs/method.md §7; their stress weight is 0.01 with Allegro-OAM-L). dael's default is 1 : 1 : 1
(docs/method.md §9). Energy and force errors above their δ sit in the Huber loss's linear part (gradient δ),
stress errors of ~10 meV/Å³ in its quadratic part (gradient w × error), so w = 100 (the earlier default) gave
stress ~100× the pull of energy: it left carbon's phases 40–100 meV/atom apart from the oracle in its own
training set. Measured on 200 random-MD structures of a benchmark (45 epochs, the campaigns' model, fine-tuned
from the CHGNet-distilled base; test MAE E / F / S in meV/atom, meV/Å, meV/Å³ on the benchmark's test set, one
seed): C w = 1: 11.1 / 102 / 12.2, w = 10: 12.8 / 112 / 8.5, w = 100: 29.1 / 180 / 6.9; Si w = 1: 16.5 / 54 / 8.7,
w = 10: 15.6 / 57 / 7.4, w = 100: 15.4 / 75 / 6.8. On C's mixed set of N = 400 (anchors + biased MD, 30 epochs)
w = 10 still left the offset (test 28.1 / 119 / 6.5; w = 1: 12.3 / 104 / 11.5): stress is the price, ~1.3–1.8×.
Early stopping, the learning-rate plateau schedule (halve after `lr_patience`) and the best checkpoint follow one
validation score: the MAEs of energy, forces and stress, each divided by the mean baseline's RMSE on the training
set (so neither the loss weights nor the units decide what "better" means).

Warm starts load a `.nequip.zip` with `ModelFromPackage` (a foundation model such as Allegro-OAM-L, or the
previous round's `model.nequip.zip`); a `.ckpt` is packaged first, because a `ModelFromCheckpoint` child
becomes unloadable once its parent moves. The per-type energy shifts are corrected for the new reference
(least squares of the parent's energy residuals over the compositions), so a model fitted to another
functional or code starts at the right energy zero. Foundation models come only from nequip.net, which dael
never contacts: download the `.nequip.zip` where there is internet and pass its local path.

`TrainSettings.device` ('cpu', the default, or 'cuda') is the Lightning trainer's accelerator (one device) and
where the trained model is evaluated; 'cuda' on a machine where torch sees no GPU is refused before anything runs.

Units: Å, eV, eV/Å, eV/Å³ (ASE's stress sign); metrics in meV/atom, meV/Å and meV/Å³.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ase import Atoms

from dael.calculators.deploy import (
    PACKAGE,
    load_calculator,
    package,
    resolve_parent,
    run_logged,
    time_calls,
    with_calculator,
)
from dael.data import dataset as store
from dael.train.metrics import Dataset, MeanBaseline, evaluate, load_structures, per_type_energies, reference_results
from dael.train.nequip_config import parent_model, scratch_model, train_config
from dael.train.settings import MARKER, TrainSettings
from dael.util.files import write_extxyz
from dael.util.provenance import versions

__all__ = ["TrainResult", "TrainSettings", "model_versions", "train"]

Progress = Callable[[str], None]

# the files and folders `train` writes into a model directory (what overwrite=True removes)
_OUTPUTS = ("data", "run", "config.yaml", PACKAGE, "parent.nequip.zip", "train.log", "history.json",
            "metrics.json", "model.nequip.pt2", "model.compile.log", ".inductor-cache")


@dataclass
class TrainResult:
    """What `train` made: the model directory, its package and the contents of metrics.json."""

    model_dir: Path
    package: Path
    metrics: dict[str, Any]


# ------------------------------------------------------------------------------------------------ data


def _left_out(source: Dataset, sources: Sequence[str] | None = None) -> str:
    """'; ' and what `load_structures` left out of a dael dataset (failed, pending, test rows), or ''."""
    if not isinstance(source, str | Path) or not store.is_dataset(source):
        return ""
    note = store.Dataset(source).left_out(sources or store.TRAINING_SOURCES)
    return f"; {source}: {note}" if note else ""


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a seeded random split with at least one structure on each side."""
    if n < 2:
        raise ValueError(f"training needs at least 2 labelled structures (1 for validation); got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ------------------------------------------------------------------------------------------------ parents


def _energy_scale_shift(model: Any) -> Any:
    """The model's per-type energy scale/shift module (also in packaged models, whose classes are copies)."""
    found = [m for m in model.modules() if type(m).__name__ == "PerTypeScaleShift"]
    if len(found) != 1:
        raise ValueError(f"expected one PerTypeScaleShift module in the parent model, found {len(found)}")
    return found[0]


def _warm_start(parent: Path, structures: Sequence[Atoms],
                types: Sequence[str]) -> tuple[list[str], float, dict[str, float]]:
    """(type names, cutoff Å, per-type energy shifts eV) for fine-tuning `parent` on `structures`. The shifts
    are the parent's own plus the per-type least-squares fit of the residuals E_ref − E_parent, which puts the
    parent on the dataset's energy zero (another functional or code shifts energies by eV/atom)."""
    from nequip.nn import graph_model

    calc = load_calculator(parent)
    model_types = calc.model.metadata[graph_model.TYPE_NAMES_KEY].split(" ")
    r_max = float(calc.model.metadata[graph_model.R_MAX_KEY])
    unknown = sorted(set(types) - set(model_types))
    if unknown:
        raise ValueError(f"the parent model {parent} has no atom types {unknown} (it knows {model_types})")
    shift = _energy_scale_shift(calc.model)
    old = shift.shifts.detach().reshape(-1).double().numpy() if shift.has_shifts else np.zeros(1)
    old = dict(zip(shift.type_names, np.broadcast_to(old, (len(shift.type_names),)), strict=True))
    residuals = [reference_results(a)[0] - with_calculator(a, calc).get_potential_energy() for a in structures]
    delta = per_type_energies(structures, np.array(residuals), types)
    return model_types, r_max, {t: float(old[t] + d) for t, d in zip(types, delta, strict=True)}


# ------------------------------------------------------------------------------------------------ training


def _epoch_line(record: dict) -> str:
    """One progress line: epoch, losses and validation MAEs in meV units, learning rate, seconds."""
    val = record["val"]
    parts = [f"epoch {record['epoch']:>4}/{record['max_epochs']}"]
    if record.get("train_loss") is not None:
        score = val.get("weighted_sum", float("nan"))
        parts.append(f"loss {record['train_loss']:.3e}  val score {score:.3e}")
    for key, label in (("energy_mae", "E {:.2f} meV/atom"), ("forces_mae", "F {:.1f} meV/Å"),
                       ("stress_mae", "S {:.2f} meV/Å³")):
        if key in val:
            parts.append(label.format(1e3 * val[key]))
    parts.append(f"lr {record['lr']:.1e}  {record['seconds']:.2f} s")
    return "  ".join(parts)


def _clear(out: Path, overwrite: bool, parent: Path | None) -> None:
    """Make `out` ready for a run: refuse to overwrite a model unless asked, then remove dael's outputs."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; the output must be a (new) directory")
    existing = [name for name in _OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise ValueError(f"{out} already holds a training run ({', '.join(existing)}): choose a new output "
                         "directory or pass overwrite")
    if parent is not None and parent.is_relative_to(out.resolve()):
        raise ValueError(f"the warm-start model {parent} lies inside the output directory {out}: it would be "
                         "overwritten; choose a new output directory")
    for name in existing:
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def train(dataset: Dataset, out: str | Path, parent: str | Path | None = None,
          settings: TrainSettings | None = None, test: Dataset | None = None,
          progress: Progress | None = print, overwrite: bool = False) -> TrainResult:
    """Train Allegro on `dataset` into the model directory `out` (see the module docstring for its files).

    `parent`: warm start from a `.nequip.zip` (foundation model or previous round), a `.ckpt` or a dael model
    directory; None trains the small default model from scratch. `dataset`: of a dael dataset, its labelled
    rows but the test ones (failed and pending rows are reported, never used). `test`: extra labelled
    structures to evaluate on (of a dael dataset: its labelled 'test' rows). `progress` receives one line per
    epoch and per stage (None: silent). Returns the model directory, its package and metrics.json's contents.
    Raises ValueError / FileNotFoundError for bad input, RuntimeError when nequip fails (with its log's end).
    """
    s = settings or TrainSettings()
    s.check()
    say = progress or (lambda _line: None)
    out = Path(out).resolve()
    parent_path = resolve_parent(parent) if parent is not None else None
    structures = load_structures(dataset)
    test_structures = load_structures(test, sources=["test"]) if test is not None else None
    _clear(out, overwrite, parent_path)
    out.mkdir(parents=True, exist_ok=True)

    types = sorted({sym for a in structures for sym in a.get_chemical_symbols()})
    train_idx, val_idx = _split(len(structures), s.val_fraction, s.seed)
    train_set = [structures[i] for i in train_idx]
    val_set = [structures[i] for i in val_idx]
    baseline = MeanBaseline(train_set)
    baseline_errors = evaluate(baseline, train_set)  # RMSEs set the validation weights (see nequip_config.metric_terms)
    has_stress = baseline_errors["stress_structures"] > 0
    data = out / "data"
    write_extxyz(data / "train.extxyz", train_set)
    write_extxyz(data / "val.extxyz", val_set)
    if test_structures is not None:
        write_extxyz(data / "test.extxyz", test_structures)
    tested = f", {len(test_structures)} test" if test_structures is not None else ""
    say(f"{len(structures)} structures ({', '.join(types)}): {len(train_set)} train, "
        f"{len(val_set)} validation{tested}{'' if has_stress else '; no stress labels in training'}"
        f"{_left_out(dataset)}")

    if parent_path is None:
        model_types, r_max = types, s.r_max
        model = scratch_model(s, types, {t: float(e) for t, e in baseline.per_type.items()})
        lr = s.lr or 1e-2
    else:
        if parent_path.suffix == ".ckpt":
            say(f"packaging the checkpoint {parent_path} (a moved checkpoint parent breaks its children)")
            parent_path = package(parent_path, out / "parent.nequip.zip", s.threads)
        model_types, r_max, shifts = _warm_start(parent_path, train_set, types)
        model = parent_model(parent_path, shifts)
        lr = s.lr or 3e-3
        say(f"warm start from {parent_path} (cutoff {r_max} Å); energy shifts {shifts} eV")


    scales = [1e-3 * baseline_errors[f"{q}_rmse"] for q in ("energy", "force", "stress")[: 2 + has_stress]]
    val_stress = has_stress and evaluate(baseline, val_set)["stress_structures"] > 0
    config = train_config(s, data, types, model_types, r_max, model, scales, lr, val_stress)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    history: list[dict] = []

    def on_line(line: str) -> None:

        if line.startswith(MARKER):
            history.append(json.loads(line[len(MARKER):]))
            say(_epoch_line(history[-1]))
        elif line.startswith("packaging the best checkpoint"):
            say(line.strip())

    say(f"nequip-train (Allegro, {s.device}, {s.threads} thread{'s' * (s.threads > 1)}) -> {out / 'run'}")
    start = time.perf_counter()
    best = out / "run" / "best.ckpt"
    run_logged([sys.executable, "-m", "dael.train.nequip_run", str(best), str(out / PACKAGE), "-cp", str(out),
                "-cn", "config", f"hydra.run.dir={out / 'run'}"], out / "train.log", s.threads, on_line)
    seconds = time.perf_counter() - start
    (out / "history.json").write_text(json.dumps(history, indent=1))
    if not best.exists():
        raise RuntimeError(f"nequip-train finished without {best}; see {out / 'train.log'}")
    if not (out / PACKAGE).is_file():
        raise RuntimeError(f"nequip-package wrote no {out / PACKAGE}; see {out / 'train.log'}")

    calc = load_calculator(out, device=s.device, threads=s.threads)
    epoch_seconds = [h["seconds"] for h in history]
    metrics: dict[str, Any] = {
        "model": PACKAGE, "parent": None if parent_path is None else str(parent_path),
        "types": types, "r_max": r_max, "n_train": len(train_set), "n_val": len(val_set),
        "epochs": len(history), "train_seconds": seconds,
        "seconds_per_epoch": float(np.median(epoch_seconds)) if epoch_seconds else None,
        "best_epoch": _best_epoch(history),
        "epoch_limit": s.epochs,
        "validation": evaluate(calc, val_set), "validation_baseline": evaluate(baseline, val_set),
        "inference": {"ms_per_call": time_calls(calc, val_set[0]), "atoms": len(val_set[0]),
                      "threads": s.threads},
        "settings": dataclasses.asdict(s) | {"lr": lr},
        "versions": versions(),  # dael (git commit), ase, nequip, allegro, torch of this training
    }
    if test_structures is not None:
        metrics["test"] = evaluate(calc, test_structures)
        metrics["test_baseline"] = evaluate(baseline, test_structures)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    say(f"done in {seconds:.0f} s: {_summary(metrics['validation'])} on validation -> {out / PACKAGE}")
    if still_improving(metrics):
        say(f"note: the best validation score came at epoch {metrics['best_epoch']} of {len(history)}: the run "
            "stopped at its epoch limit while still improving; more epochs would likely lower every error")
    return TrainResult(out, out / PACKAGE, metrics)


IMPROVING_TAIL = 0.1  # share of the last epochs in which a best validation score means "still improving"


def model_versions(model: str | Path | None) -> str | None:
    """The provenance line (dael.util.provenance) a model directory's metrics.json records; None when it has none
    (a model trained before dael recorded them, no metrics.json, no model)."""
    if model is None:
        return None
    try:
        return json.loads((Path(model) / "metrics.json").read_text()).get("versions")
    except (OSError, ValueError):
        return None


def still_improving(metrics: dict[str, Any], tail: float = IMPROVING_TAIL) -> bool:
    """True when a run (its metrics.json) ended at its epoch limit with its best validation score in the last
    `tail` share of the epochs (at least the last one): early stopping never triggered, the model is
    training-limited. Measured: Si fine-tunes stopped so at 30 epochs had 1.3-1.4x the test energy error
    of the same runs at 90 epochs."""
    epochs, best, limit = metrics.get("epochs"), metrics.get("best_epoch"), metrics.get("epoch_limit")
    if not epochs or best is None or (limit is not None and epochs < limit):
        return False
    return best > epochs - max(1, math.ceil(tail * epochs))


def _best_epoch(history: list[dict]) -> int | None:
    losses = [h["val"].get("weighted_sum", np.inf) for h in history]
    return int(np.argmin(losses)) + 1 if losses else None


def _summary(errors: dict[str, Any]) -> str:
    """'E x meV/atom, F y meV/Å, S z meV/Å³' (MAEs) of an `evaluate` result."""
    text = f"E {errors['energy_mae']:.2f} meV/atom, F {errors['force_mae']:.1f} meV/Å"
    return text + (f", S {errors['stress_mae']:.2f} meV/Å³" if errors.get("stress_mae") is not None else "")
