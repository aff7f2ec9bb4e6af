"""A campaign folder: campaign.yaml (the settings, `dael.campaign.config`) and seeds.extxyz (the seed phases,
atoms.info['phase']), written by `dael init` and read by every campaign command."""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms

from dael.campaign.config import CONFIG, Campaign
from dael.campaign.presets import phases, preset


def write(folder: str | os.PathLike, campaign: Campaign, seeds: dict[str, Atoms] | None = None,
          force: bool = False) -> Path:
    """Write campaign.yaml and seeds.extxyz (`seeds`, default the campaign's own) into `folder`; refuses to
    overwrite unless force."""
    if seeds is not None:
        campaign.seeds = seeds
    return campaign.write(folder, force)


def load(folder: str | os.PathLike) -> tuple[Campaign, dict[str, Atoms]]:
    """(campaign, seed phases) of a campaign folder."""
    campaign = Campaign.load(folder)
    return campaign, campaign.seeds


def load_or_preset(system: str) -> tuple[Campaign, dict[str, Atoms]]:
    """(campaign, seed phases) of a preset name (Si, C, NaCl) or a campaign folder."""
    if Path(system).is_dir():
        return load(system)
    return preset(system), phases(system)


def source(system: str) -> str:
    """Where `load_or_preset(system)` takes its settings from, for error messages: the folder's campaign.yaml
    or 'preset NAME'."""
    return str(Path(system) / CONFIG) if Path(system).is_dir() else f"preset {system}"
