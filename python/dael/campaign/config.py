"""Campaign configuration: one YAML file (campaign.yaml) and the seed phases (seeds.extxyz) in a folder.

Presets for Si, C and NaCl follow the authors' exploration grids (docs/method.md §5), scaled to what a 2-core
machine runs in minutes: 8-atom cells instead of 54-64 atoms, 500 biased MD steps instead of 1000,
pressures around the reference oracle's own transitions (Si diamond → β-Sn at 6 GPa, NaCl B1 → B2 at
19 GPa, C graphite → diamond above 2.4 GPa) and temperatures below/around melting.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk

from dael.explore.md import UNSTABLE, MDSettings
from dael.explore.order import ORDERS
from dael.explore.window import WINDOW
from dael.numeric.entropy import MIN_GAIN
from dael.util.checks import AUTO, natx_value, number

CONFIG = "campaign.yaml"
MODEL = {"l_max": 2, "num_scalar_features": 64, "num_tensor_features": 16, "r_max": 5.0}
"""The campaigns' Allegro (dael.train.TrainSettings fields; the distilled base's size, dael.campaign.distill):
data-limited where dael.train's default tiny model (l_max 1, 16/8, r_max 4.5 Å) is not. Measured by
benches/model_floor.py on the Si benchmark's random-MD sets, test MAE E / F (meV/atom, meV/Å): N = 400 tiny 35.7 /
178, this 22.4 / 101; N = 800 tiny 30.3 / 144, this 19.5 / 79 (one draw; ~1.5× the training time)."""
K_GLOBAL = 0.25
"""Default global bias strength in units of k_B·T per atom (bias_scale 'kT'; docs/method.md §3): the strongest
that kept every measured trajectory whole in every preset system; a campaign that is not a preset starts here."""
PRESET_K_GLOBAL = {"Si": 2.0, "NaCl": 1.0, "C": 0.25}
"""Each preset's global bias strength (k_B·T per atom; docs/method.md §3). Si's and NaCl's were chosen on the
entropy pool's own holdout (the paper's metric), not on the test set: Si fine-tuned at N = 800, own holdout 2.2×
random MD's at k = 2 against 1.4× at k = 1 (the guard stops 16 of 72 trajectories at 2000 K, keeping their
snapshots up to the break); NaCl at N = 400, 0.96 → 1.59× from k = 0.25 to 1 (every trajectory whole). C's was
chosen for trajectory survival, not on the own holdout: at 3000 K k = 1 breaks 4 of 9 trajectories and puts 9
of 58 snapshots outside the energy window, k = 0.25 none."""
PRESET_ANCHOR_FRACTION = 0.2
"""Share of each round's budget the presets give to near-equilibrium anchors (the paper's mixed pool): fine-tuned,
N = 800, 2 draws, the benchmark's mixed sets against the filter's own (stream-fill), test energy Si 4.99 vs 8.26,
NaCl 0.79 vs 0.83, C 3.36 vs 4.20 meV/atom (strain probes 3.8×, 1.3×, 2.1×); stream-fill keeps the model's own
MD in Si and C and the own holdout in NaCl and C (docs/method.md §3)."""
SEEDS = "seeds.extxyz"
PRESETS = ("Si", "C", "NaCl")


def preset_name(system: str) -> str:
    """The preset called `system`, in any case ('si' → 'Si')."""
    for name in PRESETS:
        if str(system).lower() == name.lower():
            return name
    raise ValueError(f"no preset for system {system!r}; presets: {', '.join(PRESETS)}")


def _hexagonal(a: float, c: float, symbols: str, frac: list) -> Atoms:
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    return Atoms(symbols, scaled_positions=frac, cell=cell, pbc=True)


def phases(system: str) -> dict[str, Atoms]:
    """The seed phases of a preset system (any case), 8 atoms each, at ambient lattice constants (Å)."""
    system = preset_name(system)
    if system == "Si":
        beta_tin = Atoms("Si4", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.25], [0.5, 0, 0.75]],
                         cell=[4.80, 4.80, 2.65], pbc=True)
        return {"diamond": bulk("Si", "diamond", a=5.43, cubic=True), "beta-tin": beta_tin * (1, 1, 2)}
    if system == "NaCl":
        return {"B1": bulk("NaCl", "rocksalt", a=5.64, cubic=True),
                "B2": bulk("NaCl", "cesiumchloride", a=3.30) * (2, 2, 1)}
    graphite = _hexagonal(2.46, 6.70, "C4", [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25],
                                              [2 / 3, 1 / 3, 0.75]])
    lonsdaleite = _hexagonal(2.52, 4.12, "C4", [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5],
                                                [1 / 3, 2 / 3, 0.375], [2 / 3, 1 / 3, 0.875]])
    return {"diamond": bulk("C", "diamond", a=3.57, cubic=True), "graphite": graphite * (2, 1, 1),
            "lonsdaleite": lonsdaleite * (2, 1, 1)}


@dataclass
class Explore:
    """MD grid (docs/method.md §5): pressures GPa, temperatures K, global bias strengths k_global (in units of
    k_B·T per atom with bias_scale 'kT', eV with 'paper'; see dael.explore.md.GlobalEntropyBias), local ones eV;
    window: the energy window on candidates, eV/atom (None: off; see dael.explore.window); order: the exploration
    order of the grid's trajectories ('stratified', 'random' or 'grid'; see dael.explore.order), also the order the
    benchmark's stream strategies take the entropy pool's trajectories in; unstable: eV/atom, a phase whose
    thermalised cell quenches this far below its relaxed start runs unbiased (None: off;
    dael.explore.md.quench_drop)."""

    pressures: list[float] = field(default_factory=lambda: [0.0])
    temperatures: list[float] = field(default_factory=lambda: [300.0, 1000.0])
    k_global: list[float] = field(default_factory=lambda: [K_GLOBAL])
    k_local: list[float] = field(default_factory=lambda: [0.0])
    bias_scale: str = "kT"
    window: float | None = WINDOW
    order: str = "stratified"
    ensemble: str = "nvt"
    steps: int = 500
    snapshots: int = 10
    thermalize: int = 100
    unstable: float | None = UNSTABLE
    relax_steps: int = 100
    dt: float = 1.0
    friction: float = 0.01
    workers: int = 2

    def md(self, **overrides: Any) -> MDSettings:
        """The MD settings of one trajectory of this grid (each grid point sets temperature and pressure),
        with `overrides` (e.g. snapshots=25): the one place campaign settings become MD settings."""
        keys = ("ensemble", "steps", "snapshots", "thermalize", "unstable", "relax_steps", "dt", "friction")
        return MDSettings(**{**{k: getattr(self, k) for k in keys}, **overrides})


@dataclass
class Filter:
    """Global-entropy filter: mode ('dual', 'atom', 'config'), smallest gain (nats; 0, not the authors' 0.01:
    with the population covariance ΔH ≈ (Σ_j m_j² − n·d_eff)/N' for a block of n samples of Mahalanobis
    distances m_j, so ΔH > 0 means "farther from the dataset than its own samples", whatever its size N',
    while a fixed 0.01 nats demands ever larger outliers as N' grows), fingerprint settings, ε;
    selection: 'stream' (a budget of N labels the first N snapshots the filter accepted, the authors'
    protocol) or 'greedy' (the accepted snapshots re-ranked by greedy ΔH)."""

    mode: str = "dual"
    selection: str = "stream"
    min_gain: float = MIN_GAIN
    cutoff: float = 5.0
    natx: int | str = AUTO  # 'auto' or atoms per sphere
    eps: float = 1e-3


@dataclass
class Budget:
    """Structures to label: in all, at most per round, and the share given to near-equilibrium anchors."""

    total: int = 200
    per_round: int = 100
    anchor_fraction: float = 0.0


@dataclass
class Label:
    """Oracle (name + parameters, see dael.calculators.registry.make_calculator) and the labelling workers."""

    oracle: str = "reference"
    params: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    timeout: float | None = None
    retries: int = 1


@dataclass
class Train:
    """Training settings passed to dael.train.TrainSettings (epochs, r_max, stress_weight, device, ...); base: a
    model that round 1 fine-tunes (a .nequip.zip or dael model directory, e.g. from `dael distill`; relative
    paths are relative to the campaign folder), None to train round 1 from scratch."""

    epochs: int = 60
    settings: dict[str, Any] = field(default_factory=lambda: dict(MODEL))
    base: str | None = None


@dataclass
class Benchmark:
    """Learning-curve benchmark: training-set sizes, draws, epochs (at least; small sets get more so that every
    model takes at least `min_steps` optimizer steps), MD repeats and snapshots per trajectory of the pools,
    the mixed sets' anchor share, parallel trainings, the steps (fs) of each MD-stability run, the MD
    driver of the test and transfer sets ('oracle': the label oracle, i.e. the true surface; or a registry
    name, e.g. for an oracle too costly to run MD with), and the test set's independent trajectories per
    phase, pressure and temperature (one run of a phase that transforms during MD is where its error lives:
    docs/method.md §6)."""

    sizes: list[int] = field(default_factory=lambda: [100, 200, 400, 800])
    draws: int = 3
    epochs: int = 60
    min_steps: int = 2000
    repeats: int = 4
    snapshots: int = 25
    anchor_fraction: float = 0.2
    workers: int = 2
    md_steps: int = 300
    test_driver: str = "oracle"
    test_repeats: int = 3


BASE_DRIVER = "base"
"""The `driver` value that explores with the base model (train.base, or the benchmark's --from)."""


@dataclass
class Campaign:
    system: str
    name: str = "campaign"
    driver: str = "reference"
    seed: int = 0
    explore: Explore = field(default_factory=Explore)
    filter: Filter = field(default_factory=Filter)
    budget: Budget = field(default_factory=Budget)
    label: Label = field(default_factory=Label)
    train: Train = field(default_factory=Train)
    benchmark: Benchmark = field(default_factory=Benchmark)

    def to_dict(self) -> dict:
        return asdict(self)

    def exploration_driver(self, base: str | os.PathLike | None = None) -> str:
        """The registry name (dael.calculators.registry) of the MD driver of round 1 and of the benchmark's pools:
        `driver`, or for 'base' the base model (`base` when given, else train.base) — the paper's regime: explore with
        the foundation-model side, label with the oracle."""
        if self.driver != BASE_DRIVER:
            return self.driver
        model = base if base is not None else self.train.base
        if model is None:
            raise ValueError("driver: 'base' needs a base model: set train.base (e.g. made by `dael distill`) "
                             "or pass --from to `dael benchmark`")
        return f"allegro:{model}"

    def test_md_driver(self) -> str:
        """The registry name of the benchmark's test- and transfer-set MD driver (benchmark.test_driver;
        'oracle': the label oracle, which runs without label.params there)."""
        name = self.benchmark.test_driver
        if name != "oracle":
            return name
        if self.label.params:
            raise ValueError("benchmark.test_driver 'oracle' runs MD with the oracle's name only, and label.params "
                             f"{self.label.params} would be dropped: name a driver for the test sets instead")
        return self.label.oracle

    @classmethod
    def from_dict(cls, data: dict, where: str = CONFIG) -> Campaign:
        """Build from a parsed YAML mapping; unknown keys and wrong types are errors that name the key."""
        sections = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(sections)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sections)}")
        if "system" not in data:
            raise ValueError(f"{where}: 'system' is missing")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            klass = SECTIONS.get(name)
            if klass is None:
                kwargs[name] = _typed(f"{where}: {name}", value, sections[name])
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{where}: '{name}' must be a mapping")
            known = {f.name: f.type for f in fields(klass)}
            bad = set(value) - set(known)
            if name == "explore" and "shuffle" in bad:  # written by dael before explore.order
                raise ValueError(f"{where}: explore.shuffle was replaced by explore.order: write 'order: "
                                 "stratified' (the default), 'order: random' (what shuffle: true did) or 'order: "
                                 "grid' (shuffle: false) instead")
            if bad:
                raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(bad))} in '{name}'; "
                                 f"known: {', '.join(sorted(known))}")
            kwargs[name] = klass(**{k: _typed(f"{where}: {name}.{k}", v, known[k]) for k, v in value.items()})
        campaign = cls(**kwargs)
        campaign.check(where)
        return campaign

    def check(self, where: str = CONFIG) -> None:
        """Values in range, or one ValueError naming the key."""
        e, f, b, lab = self.explore, self.filter, self.budget, self.label
        ranges: list[tuple[str, Any, dict]] = [
            *((f"explore.pressures[{i}] (GPa)", p, {}) for i, p in enumerate(e.pressures)),
            *((f"explore.temperatures[{i}] (K)", t, {"above": 0}) for i, t in enumerate(e.temperatures)),
            *((f"explore.k_global[{i}] (k_B·T per atom, or eV with bias_scale paper)", k, {})
              for i, k in enumerate(e.k_global)),
            *((f"explore.k_local[{i}] (eV)", k, {}) for i, k in enumerate(e.k_local)),
            ("explore.dt (fs)", e.dt, {"above": 0}), ("explore.friction (1/fs)", e.friction, {"low": 0}),
            ("explore.thermalize", e.thermalize, {"low": 0}), ("explore.relax_steps", e.relax_steps, {"low": 0}),
            ("explore.workers", e.workers, {"low": 1}), ("filter.min_gain (nats)", f.min_gain, {"infinite": True}),
            ("filter.cutoff (Å)", f.cutoff, {"above": 0}), ("filter.eps", f.eps, {"above": 0}),
            ("label.workers", lab.workers, {"low": 0}),
            ("label.retries", lab.retries, {"low": 0}), ("train.epochs", self.train.epochs, {"low": 1}),
        ]
        natx_value(f.natx, f"{where}: filter.natx")
        if lab.timeout is not None:
            ranges.append(("label.timeout (s)", lab.timeout, {"above": 0}))
        for key, value, limits in ranges:
            number(f"{where}: {key}", value, **limits)
        if not e.pressures or not e.temperatures:
            raise ValueError(f"{where}: explore.pressures and explore.temperatures need at least one value")
        problems = {
            "filter.mode must be 'dual', 'atom' or 'config'": f.mode not in ("dual", "atom", "config"),
            "filter.selection must be 'stream' or 'greedy'": f.selection not in ("stream", "greedy"),
            "explore.bias_scale must be 'kT' or 'paper'": e.bias_scale not in ("kT", "paper"),
            f"explore.order must be one of {', '.join(ORDERS)}": e.order not in ORDERS,
            "explore.window must be positive (eV/atom) or null": e.window is not None and not e.window > 0,
            "explore.unstable must be positive (eV/atom) or null": e.unstable is not None and not e.unstable > 0,
            "explore.ensemble must be 'nvt' or 'npt'": e.ensemble not in ("nvt", "npt"),
            "explore.temperatures must be positive (K)": any(t <= 0 for t in e.temperatures),
            "explore.steps and explore.snapshots must satisfy 1 <= snapshots <= steps":
                not 1 <= e.snapshots <= e.steps,
            "budget.total and budget.per_round must be positive": b.total < 1 or b.per_round < 1,
            "budget.anchor_fraction must lie in [0, 1]": not 0 <= b.anchor_fraction <= 1,
            "benchmark.sizes must be positive and benchmark.draws >= 1":
                any(n < 1 for n in self.benchmark.sizes) or self.benchmark.draws < 1,
            "benchmark.test_repeats must be >= 1": self.benchmark.test_repeats < 1,
        }
        for message, bad in problems.items():
            if bad:
                raise ValueError(f"{where}: {message}")


def _typed(key: str, value: Any, kind: str) -> Any:
    """`value` read from YAML as the field type `kind` ('int', 'float', 'str', 'list[float]', 'float | None',
    'dict[str, Any]'), or a ValueError that names `key` and shows the expected form."""
    if kind.endswith(" | None"):
        return None if value is None else _typed(key, value, kind.removesuffix(" | None"))
    if kind.startswith("list["):
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list, e.g. [{'0.0, 8.0' if 'float' in kind else '1, 2'}]; "
                             f"got {value!r}")
        return [_typed(f"{key}[{i}]", v, kind[5:-1]) for i, v in enumerate(value)]
    if kind == "int":
        return number(key, value, integer=True)
    if kind == "float":
        return float(number(key, value, infinite=True))  # finite where it matters: Campaign.check
    if kind == "str" and not isinstance(value, str):
        raise ValueError(f"{key} must be text; got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false; got {value!r}")
    if kind.startswith("dict[") and not isinstance(value, dict):
        raise ValueError(f"{key} must be a mapping (key: value lines); got {value!r}")
    return value


SECTIONS = {"explore": Explore, "filter": Filter, "budget": Budget, "label": Label, "train": Train,
            "benchmark": Benchmark}


def preset(system: str) -> Campaign:
    """The preset campaign of Si, C or NaCl, any case (see the module docstring for how it is scaled)."""
    system = preset_name(system)
    grids = {
        "Si": ([0.0, 8.0, 15.0], [300.0, 1000.0, 2000.0]),
        "NaCl": ([0.0, 20.0, 30.0], [300.0, 1000.0]),
        "C": ([0.0, 20.0, 50.0], [300.0, 1500.0, 3000.0]),
    }
    pressures, temperatures = grids[system]
    return Campaign(system, name=f"{system}-entropy",
                    explore=Explore(pressures, temperatures, k_global=[PRESET_K_GLOBAL[system]]),
                    budget=Budget(anchor_fraction=PRESET_ANCHOR_FRACTION))


def write(folder: str | os.PathLike, campaign: Campaign, seeds: dict[str, Atoms],
          force: bool = False) -> Path:
    """Write campaign.yaml and seeds.extxyz into `folder`; refuses to overwrite unless force."""
    import yaml
    from ase.io import write as write_structures

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
    import yaml

    from dael.data.structures import read_structures

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
