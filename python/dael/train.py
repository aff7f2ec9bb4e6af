"""Allegro training, fine-tuning and deployment (nequip 0.19 / allegro 0.8; `pip install "dael[train]"`).

`train(dataset, out)` writes a *model directory*; everything the run used sits beside what it made:

    data/{train,val,test}.extxyz   labelled structures, split by `TrainSettings.seed` (test: if given)
    config.yaml                    the `nequip-train` (Hydra) config; run/ is its run dir (best.ckpt)
    model.nequip.zip               the best checkpoint, packaged: self-contained; deploy it or warm-start the
                                   next round from it (`--from out/` or `--from out/model.nequip.zip`)
    parent.nequip.zip              only when warm-started from a checkpoint: that checkpoint, packaged
    train.log, history.json        nequip-train's whole output; one record per epoch
    metrics.json                   errors on validation (and test) beside the mean baseline's, timings

Training runs `nequip-train` in a subprocess with `threads` OpenMP/torch threads (default 1: on this busy 2-core
machine two threads never helped: 0.21-0.43 s/epoch with one and 0.21-0.73 with two on 43 8-atom cells; 5.5-7 ms
against 17-30 ms per 64-atom call; `benches/train.py`). Losses are Huber terms on the per-atom energy (δ 0.01 eV),
forces (δ 0.01 eV/Å) and stress (δ 0.1 eV/Å³), weighted 1 : 1 : `stress_weight`, as the authors fine-tune
(docs/method.md §7; their stress weight is 0.01 with Allegro-OAM-L). dael's default is 100 (docs/method.md §9: with
a tiny model, weight 1 left stress barely learned). Measured with these Huber losses (test MAE E / F / S in
meV/atom, meV/Å, meV/Å³; 43 train + 5 validation + 12 test strained, rattled 8-atom Si cells, 100 epochs, lr 1e-2,
seeds 0 and 1): weight 1: 5.7 / 95 / 4.9 (seed 0); weight 10: 3.3 / 84 / 3.7 and 10.1 / 129 / 5.0; weight 100: 5.1 /
112 / 3.2 and 8.8 / 148 / 3.3 (the seed moves E and F more than the weight does; 100 gives the best stress for ~20 %
in force). Early stopping, the learning-rate plateau schedule (halve after `lr_patience`) and the best checkpoint
follow one validation score: the MAEs of energy, forces and stress, each divided by the mean baseline's RMSE on the
training set (so neither the loss weights nor the units decide what "better" means).

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
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from dael.files import write_extxyz

__all__ = ["DEVICES", "MeanBaseline", "TrainResult", "TrainSettings", "check_device", "evaluate", "load_calculator",
           "load_structures", "resolve_parent", "time_calls", "train"]

Dataset = str | Path | Sequence[Atoms]
Progress = Callable[[str], None]

PACKAGE = "model.nequip.zip"
NO_HUB = ("foundation models (e.g. Allegro-OAM-L) are published on nequip.net, which dael never contacts: "
          "download the .nequip.zip on a machine with internet access and pass its local path")
DEVICES = ("cpu", "cuda")
# the files and folders `train` writes into a model directory (what overwrite=True removes)
_OUTPUTS = ("data", "run", "config.yaml", PACKAGE, "parent.nequip.zip", "train.log", "history.json",
            "metrics.json", "model.nequip.pt2", "model.compile.log", ".inductor-cache")


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run. The model fields apply to training from scratch only."""

    epochs: int = 200                 # most epochs
    seed: int = 0                     # data split, shuffling and (unless model_seed) model initialisation
    model_seed: int | None = None     # vary this (not seed) for a committee on the same data
    val_fraction: float = 0.1         # share of structures held out for validation (at least 1)
    batch_size: int = 4               # structures per optimizer step
    lr: float | None = None           # Adam learning rate; None: 1e-2 from scratch, 3e-3 from a parent
    stress_weight: float = 100.0      # loss weight of stress against energy and forces (1 : 1 : w)
    huber_deltas: tuple[float, float, float] = (0.01, 0.01, 0.1)  # eV/atom, eV/Å, eV/Å³
    patience: int = 30                # epochs without a better validation score before stopping
    lr_patience: int = 15             # epochs without improvement before the learning rate is halved
    ema_decay: float = 0.99           # exponential moving average of the weights (evaluated and saved)
    gradient_clip: float | None = None  # gradient-norm clip (the authors' fine-tunes use 0.015)
    threads: int = 1                  # OpenMP / torch threads of the training process
    r_max: float = 4.5                # cutoff, Å
    l_max: int = 1
    num_layers: int = 1
    num_scalar_features: int = 16
    num_tensor_features: int = 8
    model_dtype: str = "float32"
    device: str = "cpu"               # where nequip-train runs (the Lightning trainer's accelerator) and evaluates

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range (or a device this machine lacks)."""
        check_device(self.device)
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "patience": self.patience,
                    "lr_patience": self.lr_patience, "threads": self.threads, "r_max": self.r_max,
                    "num_layers": self.num_layers, "num_scalar_features": self.num_scalar_features,
                    "num_tensor_features": self.num_tensor_features}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be > 0; got {value}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if self.stress_weight < 0 or min(self.huber_deltas) <= 0:
            raise ValueError("stress_weight must be >= 0 and the Huber deltas > 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1); got {self.ema_decay}")
        if self.l_max < 0 or self.model_dtype not in ("float32", "float64"):
            raise ValueError("l_max must be >= 0 and model_dtype 'float32' or 'float64'")


def check_device(device: str) -> str:
    """`device` ('cpu' or 'cuda') when this machine can run torch on it; one ValueError saying why not."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device 'cuda' asked for, but torch {torch.__version__} sees no CUDA GPU here "
                             "(torch.cuda.is_available() is False: no GPU, no driver or a CPU-only torch build); "
                             "use --device cpu or run on a machine with a GPU")
    return device


@dataclass
class TrainResult:
    """What `train` made: the model directory, its package and the contents of metrics.json."""

    model_dir: Path
    package: Path
    metrics: dict[str, Any]


# ------------------------------------------------------------------------------------------------ data


def _labelled(atoms: Atoms, where: str) -> Atoms:
    """A clean copy carrying only the reference energy (eV), forces (eV/Å) and stress (eV/Å³ Voigt, NaN if the
    structure has none) in a SinglePointCalculator; ValueError when energy or forces are missing."""
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    for key in ("energy", "forces"):
        if results.get(key) is None:
            raise ValueError(f"{where} has no reference {key}: label the structures before training")
    stress = results.get("stress")
    if stress is None or not atoms.pbc.all():
        stress = np.full(6, np.nan)
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (3, 3):
        stress = full_3x3_to_voigt_6_stress(stress)
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    clean.calc = SinglePointCalculator(clean, energy=float(results["energy"]),
                                       forces=np.asarray(results["forces"], dtype=float), stress=stress)
    return clean


def load_structures(source: Dataset, sources: Sequence[str] | None = None) -> list[Atoms]:
    """Labelled structures of a dael dataset (its labelled rows of `sources`; None: all but 'test'), of any
    file ASE reads (extxyz, ASE db, ...; every frame) or of a sequence of Atoms with results attached;
    clean copies (see `_labelled`). The files go through `dael.structures.read_structures`."""
    from dael.structures import read_structures

    if isinstance(source, str | Path):
        structures, name = read_structures(source, sources=sources), str(source)
    else:
        structures, name = list(source), "the dataset"
        if not structures:
            raise ValueError(f"{name} holds no structures")
    return [_labelled(a, f"structure {k} of {name}") for k, a in enumerate(structures)]


def _left_out(source: Dataset, sources: Sequence[str] | None = None) -> str:
    """'; ' and what `load_structures` left out of a dael dataset (failed, pending, test rows), or ''."""
    from dael import dataset as store

    if not isinstance(source, str | Path) or not store.is_dataset(source):
        return ""
    note = store.Dataset(source).left_out(sources or store.TRAINING_SOURCES)
    return f"; {source}: {note}" if note else ""


def _reference(atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    """(energy eV, forces eV/Å (n, 3), stress eV/Å³ (6,), NaN if none) of a `_labelled` structure."""
    r = atoms.calc.results
    return r["energy"], r["forces"], r["stress"]


def _probe(atoms: Atoms, calc: Calculator) -> Atoms:
    """A copy of `atoms` (without its reference results) that `calc` computes."""
    probe = atoms.copy()
    probe.calc = calc
    return probe


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a seeded random split with at least one structure on each side."""
    if n < 2:
        raise ValueError(f"training needs at least 2 labelled structures (1 for validation); got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _per_type_energies(structures: Sequence[Atoms], energies: np.ndarray, types: Sequence[str]) -> np.ndarray:
    """Per-type energies e (eV/atom, shape (len(types),)) minimising Σ_k (energies_k − Σ_t n_kt e_t)²
    (minimum-norm when compositions do not tell the types apart); the per-atom mean for one type."""
    counts = np.array([[np.count_nonzero(np.array(a.get_chemical_symbols()) == t) for t in types]
                       for a in structures], dtype=float)
    return np.linalg.lstsq(counts, np.asarray(energies, dtype=float), rcond=None)[0]


# ------------------------------------------------------------------------------------------------ parents


def resolve_parent(source: str | Path) -> Path:
    """The absolute path of a warm-start model: a `.nequip.zip` package, a `.ckpt` checkpoint, or a dael model
    directory (its model.nequip.zip). ValueError for a hub id, FileNotFoundError for a missing path."""
    text = str(source)
    if text.startswith("nequip.net:") or "://" in text or re.fullmatch(r"[\w.-]+/[\w.-]+:[\w.-]+", text):
        raise ValueError(f"--from {text!r} looks like a model id, not a file; {NO_HUB}")
    path = Path(text).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"--from {text}: no such file or directory; {NO_HUB}")
    if path.is_dir():
        if not (path / PACKAGE).is_file():
            raise ValueError(f"--from {text}: this directory holds no {PACKAGE} (not a dael model directory)")
        return path / PACKAGE
    if not (path.name.endswith(".nequip.zip") or path.suffix == ".ckpt"):
        raise ValueError(f"--from {text}: expected a .nequip.zip package, a .ckpt checkpoint or a dael model "
                         "directory")
    return path


def _nequip_script(name: str) -> str:
    """The path of a nequip console script of this Python environment."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the training extra (pip install 'dael[train]')")
    return found


def _environment(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1"}


def _run(cmd: list[str], log: Path, threads: int, on_line: Callable[[str], None] | None = None,
         env: dict[str, str] | None = None) -> None:
    """Run `cmd` (with `threads` threads and the extra `env`), write its merged output to `log` as it comes,
    pass each line to `on_line`; RuntimeError with the output's tail when it fails."""
    environment = {**_environment(threads), **(env or {})}
    with open(log, "w") as sink, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                  text=True, env=environment, bufsize=1) as proc:
        for line in proc.stdout:
            sink.write(line)
            if on_line is not None:
                on_line(line)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}); the end of {log}:\n{tail}")


def package(checkpoint: str | Path, target: str | Path, threads: int = 1) -> Path:
    """`nequip-package build checkpoint target` (target must end in .nequip.zip); returns target."""
    target = Path(target).resolve()
    _run([_nequip_script("nequip-package"), "build", str(Path(checkpoint).resolve()), str(target)],
         target.with_name(target.name + ".log"), threads)
    target.with_name(target.name + ".log").unlink()
    return target


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
    residuals = [_reference(a)[0] - _probe(a, calc).get_potential_energy() for a in structures]
    delta = _per_type_energies(structures, np.array(residuals), types)
    return model_types, r_max, {t: float(old[t] + d) for t, d in zip(types, delta, strict=True)}


# ------------------------------------------------------------------------------------------------ config


def _metric_terms(s: TrainSettings, scales: Sequence[float]) -> tuple[list[dict], list[dict]]:
    """(loss, validation metrics) entries of nequip's MetricsManager for energy per atom, forces and (when
    `scales` has three entries) stress. Loss: Huber terms weighted 1 : 1 : stress_weight. Validation: MAEs
    weighted by 1 / `scales` (the mean baseline's RMSEs on the training set: eV/atom, eV/Å, eV/Å³), so the
    monitored sum weighs each quantity by how hard it is, whatever the stress weight of the loss."""
    fields = [("energy", {"_target_": "nequip.data.PerAtomModifier", "field": "total_energy"}, 1.0),
              ("forces", "forces", 1.0), ("stress", "stress", s.stress_weight)]
    loss, maes = [], []
    for (name, field, weight), delta, scale in zip(fields, s.huber_deltas, scales, strict=False):
        nan = {"ignore_nan": True} if name == "stress" else {}
        loss.append({"name": f"{name}_huber", "field": field, "coeff": weight, **nan,
                     "metric": {"_target_": "nequip.train.HuberLoss", "delta": delta}})
        maes.append({"name": f"{name}_mae", "field": field, "coeff": 1.0 / max(scale, 1e-12), **nan,
                     "metric": {"_target_": "nequip.train.MeanAbsoluteError"}})
    return loss, maes


def _scratch_model(s: TrainSettings, types: list[str], shifts: dict[str, float]) -> dict:
    """The default small Allegro model (l_max 1, one layer, 16 scalar / 8 tensor features)."""
    width = s.num_scalar_features
    return {
        "_target_": "allegro.model.AllegroModel", "seed": s.seed if s.model_seed is None else s.model_seed,
        "model_dtype": s.model_dtype, "type_names": types, "r_max": s.r_max, "l_max": s.l_max, "parity": True,
        "radial_chemical_embed": {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8},
        "radial_chemical_embed_dim": width,
        "scalar_embed_mlp_hidden_layers_depth": 1, "scalar_embed_mlp_hidden_layers_width": 2 * width,
        "num_layers": s.num_layers, "num_scalar_features": width,
        "num_tensor_features": s.num_tensor_features,
        "allegro_mlp_hidden_layers_depth": 1, "allegro_mlp_hidden_layers_width": 2 * width,
        "readout_mlp_hidden_layers_depth": 1, "readout_mlp_hidden_layers_width": width,
        "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
        "per_type_energy_shifts": shifts, "per_type_energy_scales": "${training_data_stats:forces_rms}",
    }


def _parent_model(parent: Path, shifts: dict[str, float]) -> dict:
    """The parent package with its per-type energy shifts replaced for the types of the dataset."""
    return {"_target_": "nequip.model.modify",
            "modifiers": [{"modifier": "modify_PerTypeScaleShift", "shifts": shifts}],
            "model": {"_target_": "nequip.model.ModelFromPackage", "package_path": str(parent)}}


def _config(s: TrainSettings, data: Path, types: list[str], model_types: list[str], r_max: float, model: dict,
            scales: Sequence[float], lr: float) -> dict:
    """The nequip-train config (nequip 0.19 syntax) of one run; `data` holds train.extxyz and val.extxyz."""
    monitor = "val0_epoch/weighted_sum"
    loss, val_metrics = _metric_terms(s, scales)
    loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": s.batch_size}
    datamodule = {
        "_target_": "nequip.data.datamodule.ASEDataModule", "seed": s.seed,
        "train_file_path": str(data / "train.extxyz"), "val_file_path": str(data / "val.extxyz"),
        "ase_args": {"format": "extxyz"},
        "transforms": [
            {"_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
             "model_type_names": model_types, "chemical_species_to_atom_type_map": {t: t for t in types}},
            {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": r_max},
        ],
        "train_dataloader": {**loader, "shuffle": True}, "val_dataloader": loader,
    }
    if model["_target_"] == "allegro.model.AllegroModel":  # data statistics only feed a new model
        datamodule["stats_manager"] = {"_target_": "nequip.data.CommonDataStatisticsManager",
                                       "type_names": model_types}
    trainer = {
        "_target_": "lightning.Trainer", "accelerator": s.device, "devices": 1,
        "max_epochs": s.epochs, "check_val_every_n_epoch": 1,
        "num_sanity_val_steps": 0, "enable_progress_bar": False, "enable_model_summary": False,
        "logger": False, "gradient_clip_val": s.gradient_clip,
        "callbacks": [
            {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "monitor": monitor,
             "dirpath": "${hydra:runtime.output_dir}", "filename": "best", "save_top_k": 1},
            {"_target_": "lightning.pytorch.callbacks.EarlyStopping", "monitor": monitor,
             "patience": s.patience},
            {"_target_": "dael.train_progress.EpochReporter", "max_epochs": s.epochs},
        ],
    }
    module = {
        "_target_": "nequip.train.EMALightningModule", "ema_decay": s.ema_decay,
        "loss": {"_target_": "nequip.train.MetricsManager", "metrics": loss},
        "val_metrics": {"_target_": "nequip.train.MetricsManager", "metrics": val_metrics},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": lr},
        "lr_scheduler": {
            "scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "factor": 0.5,
                          "patience": s.lr_patience},
            "monitor": monitor, "interval": "epoch", "frequency": 1},
        "model": model,
    }
    return {"run": ["train"], "seed": s.seed, "data": datamodule, "trainer": trainer,
            "training_module": module}


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
    baseline_errors = evaluate(baseline, train_set)  # RMSEs set the validation weights (see _metric_terms)
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
        model = _scratch_model(s, types, {t: float(e) for t, e in baseline.per_type.items()})
        lr = s.lr or 1e-2
    else:
        if parent_path.suffix == ".ckpt":
            say(f"packaging the checkpoint {parent_path} (a moved checkpoint parent breaks its children)")
            parent_path = package(parent_path, out / "parent.nequip.zip", s.threads)
        model_types, r_max, shifts = _warm_start(parent_path, train_set, types)
        model = _parent_model(parent_path, shifts)
        lr = s.lr or 3e-3
        say(f"warm start from {parent_path} (cutoff {r_max} Å); energy shifts {shifts} eV")

    import yaml

    scales = [1e-3 * baseline_errors[f"{q}_rmse"] for q in ("energy", "force", "stress")[: 2 + has_stress]]
    config = _config(s, data, types, model_types, r_max, model, scales, lr)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    history: list[dict] = []

    def on_line(line: str) -> None:
        from dael.train_progress import MARKER

        if line.startswith(MARKER):
            history.append(json.loads(line[len(MARKER):]))
            say(_epoch_line(history[-1]))

    say(f"nequip-train (Allegro, {s.device}, {s.threads} thread{'s' * (s.threads > 1)}) -> {out / 'run'}")
    start = time.perf_counter()
    _run([_nequip_script("nequip-train"), "-cp", str(out), "-cn", "config", f"hydra.run.dir={out / 'run'}"],
         out / "train.log", s.threads, on_line)
    seconds = time.perf_counter() - start
    (out / "history.json").write_text(json.dumps(history, indent=1))
    best = out / "run" / "best.ckpt"
    if not best.exists():
        raise RuntimeError(f"nequip-train finished without {best}; see {out / 'train.log'}")
    say("packaging the best checkpoint")
    package(best, out / PACKAGE, s.threads)

    calc = load_calculator(out, device=s.device, threads=s.threads)
    epoch_seconds = [h["seconds"] for h in history]
    metrics: dict[str, Any] = {
        "model": PACKAGE, "parent": None if parent_path is None else str(parent_path),
        "types": types, "r_max": r_max, "n_train": len(train_set), "n_val": len(val_set),
        "epochs": len(history), "train_seconds": seconds,
        "seconds_per_epoch": float(np.median(epoch_seconds)) if epoch_seconds else None,
        "best_epoch": _best_epoch(history),
        "validation": evaluate(calc, val_set), "validation_baseline": evaluate(baseline, val_set),
        "inference": {"ms_per_call": time_calls(calc, val_set[0]), "atoms": len(val_set[0]),
                      "threads": s.threads},
        "settings": dataclasses.asdict(s) | {"lr": lr},
    }
    if test_structures is not None:
        metrics["test"] = evaluate(calc, test_structures)
        metrics["test_baseline"] = evaluate(baseline, test_structures)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    say(f"done in {seconds:.0f} s: {_summary(metrics['validation'])} on validation -> {out / PACKAGE}")
    return TrainResult(out, out / PACKAGE, metrics)


def _best_epoch(history: list[dict]) -> int | None:
    losses = [h["val"].get("weighted_sum", np.inf) for h in history]
    return int(np.argmin(losses)) + 1 if losses else None


def _summary(errors: dict[str, Any]) -> str:
    """'E x meV/atom, F y meV/Å, S z meV/Å³' (MAEs) of an `evaluate` result."""
    text = f"E {errors['energy_mae']:.2f} meV/atom, F {errors['force_mae']:.1f} meV/Å"
    return text + (f", S {errors['stress_mae']:.2f} meV/Å³" if errors.get("stress_mae") is not None else "")


# ------------------------------------------------------------------------------------------------ deploy


def _model_file(model: str | Path) -> Path:
    """The package (preferred) or best checkpoint of a model directory, or the file given."""
    path = Path(model).expanduser()
    if path.is_dir():
        for candidate in (path / PACKAGE, path / "run" / "best.ckpt"):
            if candidate.is_file():
                return candidate.resolve()
        raise FileNotFoundError(f"{path} holds neither {PACKAGE} nor run/best.ckpt: not a trained model "
                                "directory")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file or directory")
    return path.resolve()


def _compiled(source: Path, threads: int) -> Path:
    """AOTInductor build of `source` for ASE: `<stem>.nequip.pt2` beside it, reused while newer than `source`
    (minutes on CPU; inductor's cache goes to .inductor-cache beside it, not to /tmp)."""
    stem = source.name.removesuffix(".nequip.zip").removesuffix(".ckpt")
    target = source.with_name(f"{stem}.nequip.pt2")
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    _run([_nequip_script("nequip-compile"), str(source), str(target), "--mode", "aotinductor",
          "--device", "cpu", "--target", "ase"], source.with_name(f"{stem}.compile.log"), threads,
         env={"TORCHINDUCTOR_CACHE_DIR": str(source.parent / ".inductor-cache")})
    return target


def load_calculator(model: str | Path, device: str = "cpu", threads: int | None = 1,
                    compile: bool = False) -> Calculator:
    """An ASE calculator (energy eV, forces eV/Å, stress eV/Å³) of a dael model directory, a `.nequip.zip`
    package or a `.ckpt` checkpoint, loaded eagerly. `threads`: torch intra-op threads of this process (None
    leaves them as they are). `compile=True` builds and loads an AOTInductor model instead (needs g++; takes
    minutes; TorchScript is refused by torch >= 2.10)."""
    path = _model_file(model)
    import torch
    from nequip.integrations.ase import NequIPCalculator

    if threads is not None:
        torch.set_num_threads(threads)
    if compile:
        return NequIPCalculator.from_compiled_model(str(_compiled(path, threads or 1)), device=device,
                                                    chemical_species_to_atom_type_map=True)
    # set_global_state() is called inside: nequip's float64 defaults and TF32 off
    return NequIPCalculator._from_saved_model(str(path), device=device,
                                              chemical_species_to_atom_type_map=True)


class MeanBaseline(Calculator):
    """The constant baseline: energy Σ_atoms e_type (per-type least-squares energies of `structures`; the mean
    energy per atom for one element), zero forces, the mean stress of `structures`."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, structures: Sequence[Atoms]) -> None:
        super().__init__()
        labelled = [_labelled(a, f"structure {k}") for k, a in enumerate(structures)]
        self.types = sorted({s for a in labelled for s in a.get_chemical_symbols()})
        energies = np.array([_reference(a)[0] for a in labelled])
        self.per_type = dict(zip(self.types, _per_type_energies(labelled, energies, self.types), strict=True))
        stresses = np.array([_reference(a)[2] for a in labelled])
        finite = np.isfinite(stresses).all(axis=1)
        self.stress = stresses[finite].mean(axis=0) if finite.any() else np.zeros(6)

    def calculate(self, atoms: Atoms | None = None, properties: Sequence[str] = ("energy",),
                  system_changes: Sequence[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        energy = sum(self.per_type.get(sym, 0.0) for sym in self.atoms.get_chemical_symbols())
        self.results = {"energy": float(energy), "forces": np.zeros((len(self.atoms), 3)),
                        "stress": self.stress.copy()}


def evaluate(model: Calculator | str | Path, structures: Dataset) -> dict[str, Any]:
    """Errors of a calculator (or of a model directory / package / checkpoint) on labelled structures.

    Returns counts and MAE / RMSE of the energy per atom (energy_*, meV/atom), of all force components
    (force_*, meV/Å) and of the six Voigt stress components of structures with a reference stress
    (stress_*, meV/Å³; None when there are none).
    """
    calc = load_calculator(model) if isinstance(model, str | Path) else model
    labelled = load_structures(structures)
    de, df, ds = [], [], []
    for atoms in labelled:
        energy, forces, stress = _reference(atoms)
        probe = _probe(atoms, calc)
        de.append((probe.get_potential_energy() - energy) / len(atoms))
        df.append((probe.get_forces() - forces).ravel())
        if np.isfinite(stress).all():
            ds.append(probe.get_stress(voigt=True) - stress)
    result: dict[str, Any] = {"structures": len(labelled), "atoms": int(sum(len(a) for a in labelled)),
                              "stress_structures": len(ds)}
    for name, errors in (("energy", de), ("force", df), ("stress", ds)):
        values = 1e3 * np.abs(np.concatenate([np.ravel(e) for e in errors])) if errors else None
        result[f"{name}_mae"] = None if values is None else float(values.mean())
        result[f"{name}_rmse"] = None if values is None else float(np.sqrt((values**2).mean()))
    return result


def time_calls(calc: Calculator, atoms: Atoms, calls: int = 20) -> float:
    """Median milliseconds per energy + forces + stress call on `atoms` over `calls` calls after a warm-up,
    each on a new geometry (nothing cached)."""
    probe = _probe(atoms, calc)
    times = []
    for k in range(calls + 1):
        probe.positions[0, 0] += 1e-4
        start = time.perf_counter()
        probe.get_potential_energy()
        probe.get_forces()
        probe.get_stress()
        if k:
            times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))
