"""What the checks of a model run with: one dataclass of every length, count and threshold (units in each
field's comment), checked in one place, and the conditions of the MD-robustness runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dael.label.labelling import CLOSEST
from dael.util.checks import number

CHECKS = ("md", "phases", "eos", "phonons")
"""The checks by name: MD robustness (dael.check.robustness), phase retention, equation of state and phonons
(dael.check.physics)."""
BEYOND = 1.15
"""The step beyond the grid: 15 % above its largest value (as the benchmark's transfer set, off_grid)."""


def beyond(values: list[float], step: float) -> float:
    """One step beyond the largest of `values`: BEYOND × it, or `step` above it when it is <= 0 (a single
    pressure of 0 GPa), rounded to 0.1."""
    top = max(float(v) for v in values)
    return round(top * BEYOND if top > 0 else top + step, 1)


PRESSURE_STEP = 5.0
"""GPa beyond a highest pressure <= 0."""
TEMPERATURE_STEP = 300.0
"""K beyond a highest temperature <= 0 (never: temperatures are positive)."""


def conditions(pressures: list[float], temperatures: list[float], step_beyond: bool = True
               ) -> list[tuple[float, float]]:
    """The (pressure GPa, temperature K) of the MD-robustness runs: the hottest temperature at the highest
    pressure and, with `step_beyond`, one step beyond both (`beyond`)."""
    out = [(max(map(float, pressures)), max(map(float, temperatures)))]
    if step_beyond:
        out.append((beyond(pressures, PRESSURE_STEP), beyond(temperatures, TEMPERATURE_STEP)))
    return out


@dataclass
class CheckSettings:
    """Settings of `dael.check.check_model`. The defaults are the full check (issue 44): 10 ps, 4 seeds,
    64-atom cells, every check."""

    checks: list[str] = field(default_factory=lambda: list(CHECKS))
    # --- MD robustness (dael.check.robustness)
    md_ps: float = 10.0  # ps of each trajectory
    seeds: int = 4  # trajectories per phase and condition (velocity and Langevin seeds)
    atoms: int = 64  # each phase repeated until its MD cell holds at least this many atoms
    beyond: bool = True  # also run one step beyond the grid (BEYOND × the hottest T and the highest P)
    ensemble: str = "nvt"  # 'nvt' (Langevin at the cell relaxed at P) or 'npt' (isotropic MTK at P)
    dt: float = 1.0  # fs
    friction: float = 0.01  # Langevin friction, 1/fs
    closest: float = CLOSEST  # failure: two atoms closer than this × the sum of their covalent radii
    isolated: float = 2.0  # failure: an atom with no other within this × the sum of covalent radii
    max_energy_jump: float = 1.0  # failure: potential energy change between checks 10 fs apart, eV/atom
    max_drop: float = 1.0  # failure: potential energy this far below the relaxed start's, eV/atom
    max_force: float = 50.0  # failure: a force above this, eV/Å
    workers: int = 1  # trajectories run in parallel (processes; the model must then be a registry name)
    # --- physics (dael.check.physics)
    relax_fmax: float = 0.005  # eV/Å, FIRE + FrechetCellFilter
    relax_steps: int = 500  # FIRE steps at most
    rattle: float = 0.03  # Å, Gaussian σ of the displacements of the phase-retention starts
    strain: float = 0.01  # Gaussian σ of the random symmetric cell strain of the phase-retention starts
    symprec: float = 0.1  # Å, spglib's tolerance: a phase displaced less than this keeps its space group
    eos_scales: list[float] = field(default_factory=lambda: [round(0.90 + 0.02 * k, 2) for k in range(11)])
    max_curvature_ratio: float = 5.0  # EOS: a second difference above this × their median is a kink
    phonon_atoms: int = 64  # the phonon supercell repeats the relaxed cell until it holds this many atoms
    phonon_delta: float = 0.01  # Å, finite displacement
    min_frequency: float = -5.0  # cm⁻¹: a lower (imaginary, shown negative) frequency is an instability
    seed: int = 0  # of the random starts (MD velocities, rattles)

    def __post_init__(self) -> None:
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown or not self.checks:
            raise ValueError(f"checks must be some of {', '.join(CHECKS)}; got {', '.join(self.checks) or 'none'}")
        if self.ensemble not in ("nvt", "npt"):
            raise ValueError(f"ensemble must be 'nvt' or 'npt'; got {self.ensemble!r}")
        for name, limits in {"md_ps": {"above": 0}, "seeds": {"low": 1, "integer": True},
                             "atoms": {"low": 1, "integer": True}, "dt": {"above": 0}, "friction": {"low": 0},
                             "closest": {"above": 0}, "isolated": {"above": 0}, "max_energy_jump": {"above": 0},
                             "max_drop": {"above": 0}, "max_force": {"above": 0},
                             "workers": {"low": 1, "integer": True}, "relax_fmax": {"above": 0},
                             "relax_steps": {"low": 0, "integer": True}, "rattle": {"low": 0},
                             "strain": {"low": 0}, "symprec": {"above": 0}, "max_curvature_ratio": {"above": 1},
                             "phonon_atoms": {"low": 1, "integer": True}, "phonon_delta": {"above": 0},
                             "min_frequency": {}, "seed": {"integer": True}}.items():
            setattr(self, name, number(name, getattr(self, name), **limits))
        if self.isolated <= self.closest:
            raise ValueError(f"isolated ({self.isolated}) must exceed closest ({self.closest})")
        scales = [number("eos_scales", s, above=0) for s in self.eos_scales]
        if len(scales) < 5 or sorted(set(scales)) != scales:
            raise ValueError(f"eos_scales must be at least 5 increasing volume factors; got {self.eos_scales}")

    @property
    def steps(self) -> int:
        """MD steps of each trajectory."""
        return max(1, int(round(self.md_ps * 1000 / self.dt)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "check settings") -> CheckSettings:
        """Settings from a mapping; an unknown key is one ValueError that names it and lists the known ones."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(values) - known)
        if bad:
            raise ValueError(f"{where}: unknown key(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return cls(**values)
