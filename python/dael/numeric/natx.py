"""natx, the fixed fingerprint length of a run, from the equation of state (a campaign policy).

A run fixes its fingerprint settings once, before any MD. Given none (natx None; "auto" in the CLI and
campaign.yaml), natx is `NATX_MARGIN` × the largest sphere of the seeds after compressing them to the run's
highest pressure by a soft Murnaghan equation of state (`compressed_volume_ratio`). A snapshot with a larger
sphere (a collapsed cell, a weak model's MD) never ends a run: `fingerprint_for` grows the entropy state to
NATX_MARGIN × that sphere first (zero padding changes no stored sample and no gain).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from dael.numeric.dual import DualEntropy
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings, NatxError, fingerprint
from dael.util.periodicity import scaled

__all__ = ["NATX_MARGIN", "SOFT_BULK_MODULUS", "compressed_volume_ratio", "fingerprint_for", "padded_settings",
           "run_settings"]

NATX_MARGIN = 1.5
"""How much larger than the largest sphere of the (compressed) seeds a run's fixed natx is made: thermal
motion packs spheres (B2 NaCl at 30 GPa and 1000 K: 59 atoms, relaxed: 33). Zero padding changes no distance
and no entropy gain, only the cost."""

SOFT_BULK_MODULUS = 20.0
"""GPa; with B' = 4, the Murnaghan compression used to size natx for a pressure. Softer than the solids
dael's presets explore (NaCl 25, Si 98, diamond 440 GPa), so it over- rather than under-estimates."""


def compressed_volume_ratio(pressure: float, bulk_modulus: float = SOFT_BULK_MODULUS, b_prime: float = 4.0) -> float:
    """V/V₀ at `pressure` (GPa) by Murnaghan's equation of state: (1 + B′P/B₀)^(−1/B′)."""
    return float((1.0 + b_prime * max(float(pressure), 0.0) / bulk_modulus) ** (-1.0 / b_prime))


def padded_settings(structures: Atoms | Sequence[Atoms], cutoff: float = 5.0, orbital: str = "s",
                    margin: float = NATX_MARGIN, pressure: float = 0.0) -> FingerprintSettings:
    """Settings whose natx is `margin` × the largest sphere (centre included) of `structures`, measured
    after compressing them to `compressed_volume_ratio(pressure)` (pressure in GPa; the linear factor along the
    periodic axes only: a slab in-plane, a molecule not at all): a run at high pressure packs more atoms into each
    sphere (B2 NaCl at 30 GPa: 59 against 27 at 0 GPa)."""
    structures = [structures] if isinstance(structures, Atoms) else list(structures)
    if pressure > 0:
        factor = compressed_volume_ratio(pressure) ** (1.0 / 3.0)
        structures = [scaled(a, factor) for a in structures]
    largest = fingerprint(structures, cutoff=cutoff, natx=None, orbital=orbital).settings.natx
    return FingerprintSettings(float(cutoff), int(np.ceil(margin * largest)), orbital)


def run_settings(structures: Atoms | Sequence[Atoms], cutoff: float, natx: int | None, orbital: str = "s",
                 pressure: float = 0.0) -> FingerprintSettings:
    """Settings for a run: natx as given, or (None: automatic) NATX_MARGIN × the largest sphere of
    `structures` compressed to `pressure` (GPa)."""
    if natx is not None:
        return FingerprintSettings(cutoff, natx, orbital)
    return padded_settings(structures, cutoff, orbital, pressure=pressure)


def fingerprint_for(state: GlobalEntropy | DualEntropy, structures: Atoms | Sequence[Atoms], gradients: bool = False,
                    stress: bool = False) -> Fingerprints:
    """Per-atom fingerprints of `structures` with the settings of `state` (which must have them); when a sphere
    holds more atoms than its natx, the state grows to NATX_MARGIN × that sphere first (state.grow), so the
    fingerprints always fit it. Compare state.settings.natx before and after to report a growth."""
    s = state.settings
    try:
        return fingerprint(structures, cutoff=s.cutoff, natx=s.natx, orbital=s.orbital, gradients=gradients,
                           stress=stress)
    except NatxError as exc:
        state.grow(int(np.ceil(NATX_MARGIN * exc.needed)))
    s = state.settings
    return fingerprint(structures, cutoff=s.cutoff, natx=s.natx, orbital=s.orbital, gradients=gradients,
                       stress=stress)
