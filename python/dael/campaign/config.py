"""Campaign configuration: the sections of campaign.yaml as dataclasses (explore, filter, budget, label, train,
benchmark), read with one error per wrong key or value. The presets are in `dael.campaign.presets`, the folder
(campaign.yaml + seeds.extxyz) in `dael.campaign.folder`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dael.explore.md import UNSTABLE, MDSettings
from dael.explore.order import ORDERS
from dael.label.labelling import check_label
from dael.numeric.entropy import MIN_GAIN
from dael.selection.window import WINDOW
from dael.util.checks import AUTO, natx_value, number

CONFIG = "campaign.yaml"
MODEL = {"l_max": 2, "num_scalar_features": 64, "num_tensor_features": 16, "r_max": 5.0}
"""The campaigns' Allegro (dael.train.TrainSettings fields; the distilled base's size, dael.campaign.distill):
data-limited where dael.train's default tiny model (l_max 1, 16/8, r_max 4.5 Å) is not. Measured by
benches/experiments/model_floor.py on the Si benchmark's random-MD sets, test MAE E / F (meV/atom, meV/Å): N = 400
tiny 35.7 / 178, this 22.4 / 101; N = 800 tiny 30.3 / 144, this 19.5 / 79 (one draw; ~1.5× the training time)."""
K_GLOBAL = 0.25
"""Default global bias strength in units of k_B·T per atom (bias_scale 'kT'; docs/method.md §3): the strongest
that kept every measured trajectory whole in every preset system; a campaign that is not a preset starts here."""
SEEDS = "seeds.extxyz"
@dataclass
class Explore:
    """The exploration grid (docs/method.md §5): phases (the seeds) × pressures × temperatures × bias strengths,
    one entropy-biased MD trajectory each, its snapshots offered to the filter. The MD fields default to
    dael.explore.md.MDSettings' (the authors' protocol); a campaign also thermalises 100 steps and runs phases
    that are unstable at a pressure without the bias."""

    #: pressures of the grid, GPa (each phase is relaxed and explored at each)
    pressures: list[float] = field(default_factory=lambda: [0.0])
    #: temperatures of the grid, K
    temperatures: list[float] = field(default_factory=lambda: [300.0, 1000.0])
    #: global bias strengths, in k_B·T per atom (bias_scale kT) or eV (paper); several: a grid axis; 0: plain MD
    k_global: list[float] = field(default_factory=lambda: [K_GLOBAL])
    #: local bias strengths, eV (diversity within the configuration; 0: off)
    k_local: list[float] = field(default_factory=lambda: [0.0])
    #: 'kT' (the same push per atom whatever the cell and dataset size) or 'paper' (E − k·log det, k in eV)
    bias_scale: str = "kT"
    #: energy window on candidates, eV/atom above the thermal expectation (null: off)
    window: float | None = WINDOW
    #: exploration order of the grid's trajectories: 'stratified' (over phases and conditions), 'random' or 'grid'
    order: str = "stratified"
    #: 'nvt' (Langevin at the relaxed cell) or 'npt' (isotropic, at the grid pressure)
    ensemble: str = MDSettings.ensemble
    #: biased MD steps per trajectory
    steps: int = MDSettings.steps
    #: snapshots per trajectory, evenly spaced, each offered to the filter
    snapshots: int = MDSettings.snapshots
    #: unbiased MD steps before the biased ones
    thermalize: int = 100
    #: eV/atom: a phase whose thermalised cell quenches this far below its relaxed start runs unbiased (null: off)
    unstable: float | None = UNSTABLE
    #: FIRE steps of the relaxation under pressure before the MD
    relax_steps: int = MDSettings.relax_steps
    #: MD time step, fs
    dt: float = MDSettings.dt
    #: Langevin friction, 1/fs
    friction: float = MDSettings.friction
    #: trajectories run in parallel (one process each)
    workers: int = 2

    def md(self, **overrides: Any) -> MDSettings:
        """The MD settings of one trajectory of this grid (each grid point sets temperature and pressure),
        with `overrides` (e.g. snapshots=25): the one place campaign settings become MD settings."""
        keys = ("ensemble", "steps", "snapshots", "thermalize", "unstable", "relax_steps", "dt", "friction")
        return MDSettings(**{**{k: getattr(self, k) for k in keys}, **overrides})


@dataclass
class Filter:
    """The global-entropy filter (docs/method.md §3): a snapshot joins the dataset when it raises the log det of
    the fingerprint covariance by more than min_gain."""

    #: covariance mode: 'dual' (each snapshot per atom or per configuration, by its disorder), 'atom' or 'config'
    mode: str = "dual"
    #: 'stream' (a budget of N labels the first N the filter accepted) or 'greedy' (those re-ranked by ΔH)
    selection: str = "stream"
    #: smallest gain ΔH, nats, for a snapshot to join the dataset (0: farther from the dataset than its own samples)
    min_gain: float = MIN_GAIN
    #: fingerprint cutoff radius, Å
    cutoff: float = 5.0
    #: fingerprint length: 'auto' (from the seeds compressed to the highest pressure) or atoms per sphere
    natx: int | str = AUTO
    #: ε added to the covariance diagonal
    eps: float = 1e-3


@dataclass
class Budget:
    """How many structures the oracle labels: in all, per round, and the share of near-equilibrium anchors."""

    #: structures to label in all (the oracle calls the campaign may spend)
    total: int = 200
    #: structures labelled per round at most
    per_round: int = 100
    #: share of each round given to near-equilibrium anchors (relaxed, strained and 300 K cells)
    anchor_fraction: float = 0.0


@dataclass
class Label:
    """The oracle (a calculator name and its parameters, dael.calculators.registry) and how it is run."""

    #: the oracle by name: reference, gpaw, vasp, qe or ase:module:Class (docs/guide/calculators.md)
    oracle: str = "reference"
    #: the oracle's parameters (e.g. {ecut: 400} for gpaw); one it does not take is refused
    params: dict[str, Any] = field(default_factory=dict)
    #: oracle calls run in parallel (0: in this process)
    workers: int = 2
    #: seconds one oracle call may take before it counts as failed (null: no limit)
    timeout: float | None = None
    #: further tries of a failed oracle call
    retries: int = 1
    #: label on Dask: 'local' (a LocalCluster of `workers` processes) or a running scheduler's address (null: no)
    dask: str | None = None
    #: batch jobs dael starts for each round's labels (kind slurm, pbs or lsf, cores, memory, walltime, ...: see
    #: label.cluster below and docs/guide/cluster.md; null: none)
    cluster: dict[str, Any] | None = None
    #: calculation folders (labels/<structure hash>/) kept: 'failed' (those of failed calculations) or 'all'
    keep: str = "failed"


@dataclass
class Train:
    """Training of each round's Allegro model (dael.train), from scratch or fine-tuned from a base."""

    #: training epochs per round, at most (early stopping may end sooner)
    epochs: int = 60
    #: dael.train.TrainSettings fields (model size, loss weights, batch size, device, ...)
    settings: dict[str, Any] = field(default_factory=lambda: dict(MODEL))
    #: a model round 1 fine-tunes (.nequip.zip or a dael model folder, relative to the campaign folder; null: from
    #: scratch)
    base: str | None = None


@dataclass
class Benchmark:
    """The learning-curve benchmark (`dael benchmark`): every strategy's training sets from the same pools,
    labels and training, against random MD."""

    #: training-set sizes N of the learning curves
    sizes: list[int] = field(default_factory=lambda: [100, 200, 400, 800])
    #: independent training sets per strategy and size
    draws: int = 3
    #: training epochs per model, at least
    epochs: int = 60
    #: optimizer steps per model at least (small sets get more epochs)
    min_steps: int = 2000
    #: MD seeds per grid point of the entropy and random-MD pools
    repeats: int = 4
    #: snapshots per trajectory of the pools
    snapshots: int = 25
    #: anchor share of the mixed sets
    anchor_fraction: float = 0.2
    #: models trained in parallel (one process each)
    workers: int = 2
    #: fs of each MD-stability run of a trained model
    md_steps: int = 300
    #: MD driver of the test and transfer sets: 'oracle', 'base' or a calculator name
    test_driver: str = "oracle"
    #: independent test trajectories per phase, pressure and temperature
    test_repeats: int = 3
    #: transfer structures (2×2×2 cells) the oracle labels (null: all; 0: none)
    transfer_labels: int | None = None
    #: check the models' own MD against the oracle (false: survival only)
    md_errors: bool = True


BASE_DRIVER = "base"
"""The `driver` value that explores with the base model (train.base, or the benchmark's --from)."""


@dataclass
class Campaign:
    #: name of the material (a preset name, or the seeds' formula)
    system: str
    #: name of the campaign, stored with every labelled row
    name: str = "campaign"
    #: MD driver of round 1: a calculator name, or 'base' (train.base); later rounds: the latest model
    driver: str = "reference"
    #: seed of every random choice (MD, orders, draws)
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
        return self._base_driver(base, "driver")

    def _base_driver(self, base: str | os.PathLike | None, key: str) -> str:
        model = base if base is not None else self.train.base
        if model is None:
            raise ValueError(f"{key}: 'base' needs a base model: set train.base (e.g. made by `dael distill`) "
                             "or pass --from to `dael benchmark`")
        return f"allegro:{model}"

    def test_md_driver(self, base: str | os.PathLike | None = None) -> str:
        """The registry name of the benchmark's test- and transfer-set MD driver (benchmark.test_driver;
        'oracle': the label oracle, which runs without label.params there; 'base': the base model, `base` when
        given, else train.base)."""
        name = self.benchmark.test_driver
        if name == BASE_DRIVER:
            return self._base_driver(base, "benchmark.test_driver")
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
        check_label(lab, where)
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
            "benchmark.transfer_labels must be >= 0 or null (all)":
                self.benchmark.transfer_labels is not None and self.benchmark.transfer_labels < 0,
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
