"""Campaign configuration: the sections of campaign.yaml as dataclasses (explore, filter, budget, label, train,
benchmark, evaluate, model_check), read with one error per wrong key or value. The presets are in
`dael.campaign.presets`, the folder (campaign.yaml + seeds.extxyz) in `dael.campaign.folder`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from ase import Atoms
from ase.io import write as write_structures

from dael.calculators.registry import check_calculator
from dael.campaign.parse import bad_errors, keyword_arguments
from dael.campaign.sections import GATED, Benchmark, Budget, Evaluate, Explore, Filter, Label, ModelCheck, Train
from dael.campaign.seeds import TEMPERATURES, default_driver, formula, read_seeds
from dael.data.structures import read_structures
from dael.explore.conditions import SLAB_CELLS, check_phases
from dael.explore.order import ORDERS
from dael.label.labelling import check_label
from dael.util.checks import natx_value, number
from dael.util.periodicity import VACUUM

CONFIG = "campaign.yaml"
SEEDS = "seeds.extxyz"
ANCHOR_FRACTION = 0.2
"""Share of each round a campaign on the user's structures gives to near-equilibrium anchors (the presets' too)."""
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
    #: parameters of the driver, e.g. {model_paths: my.model} for ase:mace.calculators:MACECalculator; one it does
    #: not take is refused
    driver_params: dict[str, Any] = field(default_factory=dict)
    #: seed of every random choice (MD, orders, draws)
    seed: int = 0
    explore: Explore = field(default_factory=Explore)
    filter: Filter = field(default_factory=Filter)
    budget: Budget = field(default_factory=Budget)
    label: Label = field(default_factory=Label)
    train: Train = field(default_factory=Train)
    benchmark: Benchmark = field(default_factory=Benchmark)
    evaluate: Evaluate = field(default_factory=Evaluate)
    model_check: ModelCheck = field(default_factory=ModelCheck)
    #: the seed phases by name (seeds.extxyz beside campaign.yaml; not a key of it)
    seeds: dict[str, Atoms] = field(default_factory=dict, repr=False, compare=False, metadata={"yaml": False})
    #: what was done to the seeds when they were read (a molecule boxed, ...; not a key of campaign.yaml)
    notes: list[str] = field(default_factory=list, repr=False, compare=False, metadata={"yaml": False})

    def to_dict(self) -> dict:
        """campaign.yaml's content (the seeds are written beside it)."""
        return {f.name: asdict(v) if is_dataclass(v := getattr(self, f.name)) else v for f in fields(self)
                if f.metadata.get("yaml", True)}

    def write(self, folder: str | os.PathLike, force: bool = False) -> Path:
        """Write campaign.yaml and seeds.extxyz (the `seeds`) into `folder`; refuses to overwrite unless force."""
        folder = Path(folder)
        path = folder / CONFIG
        if path.exists() and not force:
            raise ValueError(f"{path} exists; pass --force to overwrite it")
        if not self.seeds:
            raise ValueError("a campaign needs seed phases: set campaign.seeds or use Campaign.from_structures")
        folder.mkdir(parents=True, exist_ok=True)
        structures = []
        for name, atoms in self.seeds.items():
            atoms = atoms.copy()
            atoms.info["phase"] = name
            structures.append(atoms)
        write_structures(folder / SEEDS, structures, format="extxyz")
        header = (f"# dael campaign for {self.system}: edit and run `dael run` in this folder.\n"
                  f"# Seed phases are in {SEEDS} (atoms.info['phase']). Units: GPa, K, eV, Å, fs.\n")
        path.write_text(header + yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Campaign:
        """The campaign of a folder: campaign.yaml, and its `seeds` from seeds.extxyz."""
        folder = Path(folder)
        path = folder / CONFIG
        if not path.exists():
            raise ValueError(f"{path} not found: create a campaign with `dael init SYSTEM --dir {folder}` or "
                             f"`dael init --structures FILE ... --oracle NAME --dir {folder}`")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from exc
        campaign = cls.from_dict(data, str(path))
        if not (folder / SEEDS).exists():
            raise ValueError(f"{folder / SEEDS} not found: the seed phases of the campaign")
        campaign.seeds = {a.info.get("phase", f"seed{n}"): a for n, a in enumerate(read_structures(folder / SEEDS))}
        return campaign

    @classmethod
    def from_structures(cls, files: Sequence[str | os.PathLike], oracle: str, driver: str | None = None,
                        oracle_params: dict[str, Any] | None = None, pressures: Sequence[float] | None = None,
                        temperatures: Sequence[float] | None = None, name: str | None = None,
                        vacuum: float = VACUUM) -> Campaign:
        """A campaign for the seed phases of `files` (dael.campaign.seeds.read_seeds; `notes` says what was done
        to them): labelled by `oracle` (a registry name, with `oracle_params`), explored by `driver` (default: a
        foundation model covering the elements) at `pressures` (GPa; default [0]; none for molecules) and
        `temperatures` (K; default [300, 1000]), with the defaults of a bulk solid (global bias K_GLOBAL k_B·T
        per atom, a fifth of each round for near-equilibrium anchors). Every input is checked here."""
        seeds, notes = read_seeds(files, vacuum)
        check_phases(seeds, pressures or [0.0])  # a pressure for a slab or a molecule is refused here
        params = dict(oracle_params or {})
        try:
            check_calculator(oracle, **params)
        except Exception as exc:  # a calculator's constructor may raise anything for bad parameters
            raise ValueError(f"--oracle {oracle} {params or ''}: {exc}") from exc
        driver = driver or default_driver(seeds)
        check_calculator(driver)
        system = name or formula(seeds)
        explore = Explore(pressures=[float(p) for p in pressures] if pressures else [0.0],
                          temperatures=[float(t) for t in temperatures] if temperatures else list(TEMPERATURES),
                          vacuum=vacuum)
        campaign = cls(system, name=f"{system}-entropy", driver=driver, explore=explore,
                       budget=Budget(anchor_fraction=ANCHOR_FRACTION), label=Label(oracle, params), seeds=seeds,
                       notes=notes)
        campaign.check()
        return campaign

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
        campaign = cls(**keyword_arguments(cls, data, where))
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
            ("explore.workers", e.workers, {"low": 1}), ("explore.vacuum (Å)", e.vacuum, {"above": 0}),
            ("explore.backoff (bias halvings)", e.backoff, {"low": 0, "integer": True}),
            ("filter.min_gain (nats)", f.min_gain, {"infinite": True}),
            ("filter.cutoff (Å)", f.cutoff, {"above": 0}), ("filter.eps", f.eps, {"above": 0}),
            ("label.workers", lab.workers, {"low": 0}),
            ("label.retries", lab.retries, {"low": 0}), ("train.epochs", self.train.epochs, {"low": 1}),
        ]
        natx_value(f.natx, f"{where}: filter.natx")
        self.model_check.check_settings(where)
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
            "explore.next_driver must be 'model' or 'driver'": e.next_driver not in ("model", "driver"),
            f"explore.model_gate takes {', '.join(GATED)}, each a positive error (meV/atom, meV/Å, meV/Å³)":
                bad_errors(e.model_gate),
            f"evaluate.stop_at takes {', '.join(GATED)}, each a positive error (meV/atom, meV/Å, meV/Å³)":
                bad_errors(self.evaluate.stop_at),
            "evaluate.stop_at needs evaluate.test (the errors it stops at are the test set's)":
                bool(self.evaluate.stop_at) and not self.evaluate.test,
            f"explore.slab_cell must be one of {', '.join(SLAB_CELLS)}": e.slab_cell not in SLAB_CELLS,
            "explore.temperatures must be positive (K)": any(t <= 0 for t in e.temperatures),
            "explore.steps and explore.snapshots must satisfy 1 <= snapshots <= steps":
                not 1 <= e.snapshots <= e.steps,
            "budget.total and budget.per_round must be positive": b.total < 1 or b.per_round < 1,
            "budget.anchor_fraction must lie in [0, 1]": not 0 <= b.anchor_fraction <= 1,
            "benchmark.sizes must be positive and benchmark.draws >= 1":
                any(n < 1 for n in self.benchmark.sizes) or self.benchmark.draws < 1,
            "benchmark.test_repeats must be >= 1": self.benchmark.test_repeats < 1,
            "benchmark.robustness_sizes must be positive, robustness_ps > 0 and robustness_seeds >= 1":
                any(n < 1 for n in self.benchmark.robustness_sizes) or not self.benchmark.robustness_ps > 0
                or self.benchmark.robustness_seeds < 1,
            "benchmark.transfer_labels must be >= 0 or null (all)":
                self.benchmark.transfer_labels is not None and self.benchmark.transfer_labels < 0,
        }
        for message, bad in problems.items():
            if bad:
                raise ValueError(f"{where}: {message}")
