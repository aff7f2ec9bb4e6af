"""A campaign folder: campaign.yaml (the settings, `dael.campaign.config`) and seeds.extxyz (the seed phases,
atoms.info['phase']), written by `dael init` and read by every campaign command."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from ase import Atoms
from ase.io import write as write_structures

from dael.campaign.config import CONFIG, SEEDS, Campaign
from dael.campaign.presets import phases, preset
from dael.data.structures import read_structures


def write(folder: str | os.PathLike, campaign: Campaign, seeds: dict[str, Atoms],
          force: bool = False) -> Path:
    """Write campaign.yaml and seeds.extxyz into `folder`; refuses to overwrite unless force."""
    folder = Path(folder)
    path = folder / CONFIG
    if path.exists() and not force:
        raise ValueError(f"{path} exists; pass --force to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    structures = []
    for name, atoms in seeds.items():
        atoms = atoms.copy()
        atoms.info["phase"] = name
        structures.append(atoms)
    write_structures(folder / SEEDS, structures, format="extxyz")
    header = (f"# dael campaign for {campaign.system}: edit and run `dael run` in this folder.\n"
              f"# Seed phases are in {SEEDS} (atoms.info['phase']). Units: GPa, K, eV, Å, fs.\n")
    path.write_text(header + yaml.safe_dump(campaign.to_dict(), sort_keys=False))
    return path


def load(folder: str | os.PathLike) -> tuple[Campaign, dict[str, Atoms]]:
    """Read campaign.yaml and the seed phases of a campaign folder."""
    folder = Path(folder)
    path = folder / CONFIG
    if not path.exists():
        raise ValueError(f"{path} not found: create a campaign with `dael init SYSTEM --dir {folder}`")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    campaign = Campaign.from_dict(data, str(path))
    if not (folder / SEEDS).exists():
        raise ValueError(f"{folder / SEEDS} not found: the seed phases of the campaign")
    seeds = {a.info.get("phase", f"seed{n}"): a for n, a in enumerate(read_structures(folder / SEEDS))}
    return campaign, seeds


def load_or_preset(system: str) -> tuple[Campaign, dict[str, Atoms]]:
    """(campaign, seed phases) of a preset name (Si, C, NaCl) or a campaign folder."""
    if Path(system).is_dir():
        return load(system)
    return preset(system), phases(system)


def source(system: str) -> str:
    """Where `load_or_preset(system)` takes its settings from, for error messages: the folder's campaign.yaml
    or 'preset NAME'."""
    return str(Path(system) / CONFIG) if Path(system).is_dir() else f"preset {system}"
