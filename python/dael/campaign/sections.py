"""The sections of campaign.yaml as dataclasses: explore, filter, budget, label, train, benchmark, evaluate. Every
field carries a `#:` comment (the campaign.yaml reference, docs/guide/campaign-yaml.md, is generated from them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dael.check.settings import CheckSettings
from dael.explore.md import UNSTABLE, MDSettings
from dael.numeric.entropy import MIN_GAIN
from dael.selection.window import WINDOW
from dael.util.checks import AUTO
from dael.util.periodicity import VACUUM

MODEL = {"l_max": 2, "num_scalar_features": 64, "num_tensor_features": 16, "r_max": 5.0}
"""The campaigns' Allegro (dael.train.TrainSettings fields; the distilled base's size, dael.campaign.distill):
data-limited where dael.train's default tiny model (l_max 1, 16/8, r_max 4.5 Å) is not. Measured by
benches/experiments/model_floor.py on the Si benchmark's random-MD sets, test MAE E / F (meV/atom, meV/Å): N = 400
tiny 35.7 / 178, this 22.4 / 101; N = 800 tiny 30.3 / 144, this 19.5 / 79 (one draw; ~1.5× the training time)."""
K_GLOBAL = 0.25
"""Default global bias strength in units of k_B·T per atom (bias_scale 'kT'; docs/method.md §3): the strongest
that kept every measured trajectory whole in every preset system; a campaign that is not a preset starts here."""
MODEL_GATE = {"energy_mae": 30.0, "force_mae": 150.0}
"""Default explore.model_gate: validation MAEs (meV/atom, meV/Å) a round's model must be within to drive the next
round's MD."""
GATED = ("energy_mae", "force_mae", "stress_mae")
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
    #: local bias strengths, eV (diversity within the configuration; 0: off, the presets' choice, see
    #: docs/results.md "The local term")
    k_local: list[float] = field(default_factory=lambda: [0.0])
    #: 'kT' (the same push per atom whatever the cell and dataset size) or 'paper' (E − k·log det, k in eV)
    bias_scale: str = "kT"
    #: energy window on candidates, eV/atom above the thermal expectation (null: off)
    window: float | None = WINDOW
    #: exploration order of the grid's trajectories: 'stratified' (over phases and conditions), 'random' or 'grid'
    order: str = "stratified"
    #: 'nvt' (Langevin at the relaxed cell) or 'npt' (isotropic, at the grid pressure; bulk phases only)
    ensemble: str = MDSettings.ensemble
    #: a slab's (or wire's) periodic cell: 'fixed' as given, or 'relax' to zero stress along its periodic axes only
    slab_cell: str = MDSettings.slab_cell
    #: Å of vacuum on each side of a seed without a cell along its non-periodic axes (a molecule from an .xyz file)
    vacuum: float = VACUUM
    #: biased MD steps per trajectory
    steps: int = MDSettings.steps
    #: snapshots per trajectory, evenly spaced, each offered to the filter
    snapshots: int = MDSettings.snapshots
    #: unbiased MD steps before the biased ones
    thermalize: int = 100
    #: eV/atom: a phase whose thermalised cell quenches this far below its relaxed start runs unbiased (null: off)
    unstable: float | None = UNSTABLE
    #: times a biased trajectory stopped by the blow-up guard goes back to its last sane state (≤ 10 steps
    #: earlier) and runs on with its bias strengths halved (0: it stops there)
    backoff: int = MDSettings.backoff
    #: FIRE steps of the relaxation under pressure before the MD
    relax_steps: int = MDSettings.relax_steps
    #: MD time step, fs
    dt: float = MDSettings.dt
    #: Langevin friction, 1/fs
    friction: float = MDSettings.friction
    #: trajectories run in parallel (one process each)
    workers: int = 2
    #: MD driver of rounds after the first: 'model' (the previous round's model, while its validation errors are
    #: within model_gate; else the campaign's driver) or 'driver' (always the campaign's driver)
    next_driver: str = "model"
    #: validation MAEs (energy_mae meV/atom, force_mae meV/Å, stress_mae meV/Å³) under which a round's model may
    #: drive the next round's MD: about a foundation model's error against DFT (CHGNet on MPtrj: 30 meV/atom,
    #: 77 meV/Å), forces doubled for the noise of a small validation set
    model_gate: dict[str, float] = field(default_factory=lambda: dict(MODEL_GATE))

    def md(self, **overrides: Any) -> MDSettings:
        """The MD settings of one trajectory of this grid (each grid point sets temperature and pressure),
        with `overrides` (e.g. snapshots=25): the one place campaign settings become MD settings."""
        keys = ("ensemble", "steps", "snapshots", "thermalize", "unstable", "relax_steps", "dt", "friction",
                "slab_cell", "backoff")
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
    #: sizes N whose models also run the MD-robustness check of `dael check` (failure fraction and time to failure
    #: of their own MD; empty: none)
    robustness_sizes: list[int] = field(default_factory=list)
    #: ps of each robustness trajectory
    robustness_ps: float = 10.0
    #: robustness trajectories per phase and condition (the hottest temperature at the highest pressure, and beyond)
    robustness_seeds: int = 4


@dataclass
class Evaluate:
    """What the campaign is measured against: the user's own labelled test set, evaluated by each round's model
    (`dael status` shows the learning curve), and an optional target that ends the campaign before the budget."""

    #: labelled structures (extxyz or a dael dataset, relative to the campaign folder) each round's model is
    #: evaluated on; null: none
    test: str | None = None
    #: test MAEs (energy_mae meV/atom, force_mae meV/Å, stress_mae meV/Å³) at which the campaign stops before
    #: its budget; empty: spend the budget
    stop_at: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelCheck:
    """The checks `dael run` runs on each round's model after training (dael.check; docs/guide/checks.md): a short
    version of `dael check`, recorded in the round's log entry and in models/round-NN/check.json."""

    #: check each round's model after training (false: off)
    enabled: bool = True
    #: which checks: md (the model's own MD), phases (space groups kept under its relaxation), eos, phonons
    checks: list[str] = field(default_factory=lambda: ["md", "phases", "eos"])
    #: ps of each MD trajectory (the hottest temperature at the highest pressure, and one step beyond)
    md_ps: float = 2.0
    #: MD trajectories per phase and condition
    seeds: int = 2
    #: calculator whose relaxed phases and phonons the model must reproduce (e.g. reference, when it is the oracle;
    #: null: every seed phase must keep its space group and be free of imaginary phonons at every pressure)
    reference: str | None = None
    #: further dael.check.CheckSettings fields: thresholds, MD cell size, EOS scales, ... (docs/guide/checks.md)
    settings: dict[str, Any] = field(default_factory=dict)

    def check_settings(self, where: str = "campaign.yaml") -> CheckSettings:
        """The dael.check settings of a round's check (this section's keys win over `settings`')."""
        return CheckSettings.from_dict({**self.settings, "checks": self.checks, "md_ps": self.md_ps,
                                        "seeds": self.seeds}, f"{where}: model_check")


SECTIONS = {"explore": Explore, "filter": Filter, "budget": Budget, "label": Label, "train": Train,
            "benchmark": Benchmark, "evaluate": Evaluate, "model_check": ModelCheck}
"""campaign.yaml's sections by key."""
