"""The `nequip-train` (Hydra) config of one training run, in nequip 0.19 / allegro 0.8 syntax.

The model is the small Allegro of `TrainSettings` trained from scratch, or a parent package whose per-type
energy shifts are replaced (warm start). The loss is Huber terms on the per-atom energy, forces and stress,
weighted `energy_weight` : 1 : `stress_weight`; early stopping, the learning-rate plateau schedule and the best
checkpoint follow one validation score, the MAEs each divided by the mean baseline's RMSE
(see `dael.train.training`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dael.train.settings import TrainSettings

__all__ = ["metric_terms", "parent_model", "scratch_model", "train_config"]


def metric_terms(s: TrainSettings, scales: Sequence[float], validate_stress: bool = True) -> tuple[list[dict],
                                                                                                    list[dict]]:
    """(loss, validation metrics) entries of nequip's MetricsManager for energy per atom, forces and (when
    `scales` has three entries) stress. Loss: Huber terms weighted energy_weight : 1 : stress_weight. Validation: MAEs
    weighted by 1 / `scales` (the mean baseline's RMSEs on the training set: eV/atom, eV/Å, eV/Å³), so the
    monitored sum weighs each quantity by how hard it is, whatever the stress weight of the loss; stress only with
    `validate_stress` (a validation set of slabs and molecules has no stress: its MAE would be NaN, and so would
    the monitored sum that early stopping and the best checkpoint follow)."""
    fields = [("energy", {"_target_": "nequip.data.PerAtomModifier", "field": "total_energy"}, s.energy_weight),
              ("forces", "forces", 1.0), ("stress", "stress", s.stress_weight)]
    loss, maes = [], []
    for (name, field, weight), delta, scale in zip(fields, s.huber_deltas, scales, strict=False):
        nan = {"ignore_nan": True} if name == "stress" else {}
        loss.append({"name": f"{name}_huber", "field": field, "coeff": weight, **nan,
                     "metric": {"_target_": "nequip.train.HuberLoss", "delta": delta}})
        maes.append({"name": f"{name}_mae", "field": field, "coeff": 1.0 / max(scale, 1e-12), **nan,
                     "metric": {"_target_": "nequip.train.MeanAbsoluteError"}})
    return loss, maes if validate_stress else maes[:2]


def scratch_model(s: TrainSettings, types: list[str], shifts: dict[str, float]) -> dict:
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


def parent_model(parent: Path, shifts: dict[str, float]) -> dict:
    """The parent package with its per-type energy shifts replaced for the types of the dataset."""
    return {"_target_": "nequip.model.modify",
            "modifiers": [{"modifier": "modify_PerTypeScaleShift", "shifts": shifts}],
            "model": {"_target_": "nequip.model.ModelFromPackage", "package_path": str(parent)}}


def train_config(s: TrainSettings, data: Path, types: list[str], model_types: list[str], r_max: float,
                 model: dict, scales: Sequence[float], lr: float, validate_stress: bool = True) -> dict:
    """The nequip-train config (nequip 0.19 syntax) of one run; `data` holds train.extxyz and val.extxyz (with
    stress labels where `validate_stress`, see `metric_terms`)."""
    monitor = "val0_epoch/weighted_sum"
    loss, val_metrics = metric_terms(s, scales, validate_stress)
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
            {"_target_": "dael.train.progress.EpochReporter", "max_epochs": s.epochs},
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
