"""Entropy-biased molecular dynamics (docs/method.md §2–3, §5).

Bias calculators are ASE calculators that wrap a driver calculator (a foundation model, the current MLIP,
or the reference oracle) and add an entropy term to its energy, with exact forces and stress from the
analytic fingerprint gradients:

- `LocalEntropyBias`:  E = E_driver − k·S_loc, S_loc the nearest-neighbour entropy of the configuration's
  own atomic fingerprints (diversity within the cell);
- `GlobalEntropyBias`: E = E_driver − k·log det Σ(D ∪ current), the dataset's fingerprint covariance with
  the current configuration added (novelty with respect to the labelled data).

They chain: `GlobalEntropyBias(LocalEntropyBias(driver))`. k is an energy in eV (entropies are in nats).
Stress follows ASE: σ = (1/V) ∂E/∂ε (eV/Å³, Voigt xx yy zz yz xz xy), so the bias adds
−(k/V)·∂S/∂ε; checked against finite strains, which matters for NPT.

`run_md` runs one trajectory (relax under pressure, thermalise, biased NVT Langevin or NPT MTK) and
returns its snapshots, stopping early with a recorded reason if the trajectory blows up.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT
from ase.md.velocitydistribution import Stationary
from ase.optimize import FIRE

from dael.explore.conditions import SLAB_CELLS, check_phase, relaxation_target
from dael.numeric.entropy import GlobalEntropy, local_entropy_gradient
from dael.numeric.fingerprint import FingerprintSettings, fingerprint
from dael.numeric.natx import fingerprint_for, padded_settings
from dael.numeric.neighbors import neighbor_list
from dael.util.checks import number

GPA = units.GPa
"""eV/Å³ per GPa."""
BACKOFF = 2
"""Times a biased trajectory stopped by the guard halves its biases and goes on (MDSettings.backoff)."""


class EntropyBias(Calculator):
    """Driver energy minus k times an entropy of the configuration's fingerprints.

    Subclasses implement `entropy(atoms, stress) -> (S, ∂S/∂r (n, 3), ∂S/∂ε (6,) Voigt, ASE convention)`.
    After a calculation, results also hold 'entropy' (nats) and 'bias_energy' (eV) of this term.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, driver: Calculator, k: float, **kwargs):
        super().__init__(**kwargs)
        if not np.isfinite(k):
            raise ValueError(f"bias strength k must be a finite energy in eV; got {k}")
        self.driver, self.k = driver, float(k)

    def entropy(self, atoms: Atoms, stress: bool) -> tuple[float, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        wanted = ["energy", "forces"] + (["stress"] if want_stress else [])
        base = {name: np.copy(self.driver.get_property(name, atoms)) for name in wanted}
        # free_energy only where the driver computed it (CHGNet, SevenNet and others implement none)
        free = getattr(self.driver, "results", {}).get("free_energy")
        s, ds_dr, ds_de = self.entropy(atoms, want_stress) if self.k else (0.0, 0.0, np.zeros(6))
        energy = float(base["energy"]) - self.k * s
        self.results = {
            "energy": energy,
            "free_energy": energy if free is None else float(free) - self.k * s,
            "forces": base["forces"] + self.k * ds_dr,
            "entropy": s,
            "bias_energy": -self.k * s,
        }
        if want_stress:
            self.results["stress"] = base["stress"] - self.k * np.asarray(ds_de) / atoms.get_volume()


class LocalEntropyBias(EntropyBias):
    """E = E_driver − k·S_loc (docs/method.md §2), fingerprints with sphere `cutoff` Å (default 4 Å, the authors').

    S_loc uses every atom's distance to its nearest other fingerprint, so the fingerprint length (natx)
    only pads with zeros and changes nothing: it is sized to the largest sphere at each call."""

    def __init__(self, driver: Calculator, k: float = 1.0, cutoff: float = 4.0, orbital: str = "s", **kwargs):
        super().__init__(driver, k, **kwargs)
        self.cutoff, self.orbital = float(cutoff), orbital

    def entropy(self, atoms: Atoms, stress: bool) -> tuple[float, np.ndarray, np.ndarray]:
        fps = fingerprint(atoms, cutoff=self.cutoff, natx=None, orbital=self.orbital, gradients=True,
                          stress=stress)
        return local_entropy_gradient(fps)


BIAS_SCALES = ("kT", "paper")


class GlobalEntropyBias(EntropyBias):
    """The dataset-aware bias (docs/method.md §3), D the dataset state (None: empty), in one of two scales:

    - scale='kT' (dael's default): E = E_driver − k·k_B·T·(N'/2)·[H(D ∪ x) − H(D)], k dimensionless,
      T = `temperature` K, N' the samples of D ∪ x (atoms in 'atom' mode; in 'config' mode structures, times
      the cell's atoms). Since ∂H/∂x_j = (2/N')·Σ'⁻¹(x_j − μ'), each atom is pushed by k·k_B·T·Σ'⁻¹(x_j − μ')
      ·∂x_j/∂r: to first order the bias is −(k·k_B·T/2)·Σ_j m_j², m_j the Mahalanobis distance of atom j's
      fingerprint from the dataset. It does not depend on the cell's size or the dataset's, and it flattens
      the Gaussian of the dataset's fingerprints at temperature T by the factor k (k < 1 stays bounded).
    - scale='paper' (the authors'): E = E_driver − k·H(D ∪ x), k in eV. Its per-atom force carries 2/N',
      so the same k pushes an 8-atom cell against an empty dataset ~10⁴× harder than a 64-atom cell against
      a dataset of 50,000 atoms.

    The fingerprint settings are the dataset's; for an empty dataset, (cutoff, natx, orbital), with natx
    None sized once, at the first call, to NATX_MARGIN × the largest sphere (zero padding adds a constant to H).
    mode: 'atom' or 'config' (the dataset's mode wins). The state is read at each call, so structures
    added to it during a run bias the rest of the run."""

    def __init__(self, driver: Calculator, dataset: GlobalEntropy | None = None, k: float = 2.0,
                 mode: str = "atom", cutoff: float = 5.0, natx: int | None = None, orbital: str = "s",
                 eps: float = 1e-3, scale: str = "paper", temperature: float | None = None, **kwargs):
        super().__init__(driver, k, **kwargs)
        if scale not in BIAS_SCALES:
            raise ValueError(f"bias scale must be one of {', '.join(BIAS_SCALES)}; got {scale!r}")
        if scale == "kT" and not (temperature is not None and np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"scale='kT' needs the MD temperature in K (positive); got {temperature}")
        self.scale, self.temperature = scale, temperature
        self.dataset = dataset if dataset is not None else GlobalEntropy(mode, eps)
        if self.dataset.settings is None and natx is not None:
            self.dataset.settings = FingerprintSettings(cutoff, natx, orbital)
        self.cutoff, self.orbital = float(cutoff), orbital

    def settings(self, atoms: Atoms) -> FingerprintSettings:
        if self.dataset.settings is None:
            self.dataset.settings = padded_settings(atoms, self.cutoff, self.orbital)
        return self.dataset.settings

    def entropy(self, atoms: Atoms, stress: bool) -> tuple[float, np.ndarray, np.ndarray]:
        self.settings(atoms)
        fps = fingerprint_for(self.dataset, atoms, gradients=True, stress=stress)  # grows natx if needed
        h, dh_dfp = self.dataset.logdet_with(fps.of(0))
        if self.scale == "kT":
            n = len(atoms)
            before = self.dataset.logdet  # d·ln ε for an empty state (its dimension is set by logdet_with)
            factor = units.kB * self.temperature * (self.dataset.n + (n if self.dataset.mode == "atom" else 1)) / 2
            factor *= 1 if self.dataset.mode == "atom" else n
            h, dh_dfp = factor * (h - before), factor * dh_dfp
        dr, de = fps.chain(0, dh_dfp)
        return h, dr, de


@dataclass
class Guard:
    """When a trajectory has blown up: atoms closer than `min_distance` Å, a force above `max_force`
    eV/Å, an energy change above `max_energy_jump` eV/atom between checks, or a volume outside
    [`min_volume_ratio`, `max_volume_ratio`] × the starting volume."""

    min_distance: float = 0.7
    max_force: float = 50.0
    max_energy_jump: float = 2.0
    min_volume_ratio: float = 0.4
    max_volume_ratio: float = 3.0
    _volume: float = 0.0
    _energy: float | None = None

    def start(self, atoms: Atoms) -> None:
        self._volume = atoms.get_volume() if atoms.cell.rank == 3 else 0.0
        self._energy = None

    def resume(self) -> None:
        """Forget the last energy (the run goes on from an earlier state); the starting volume stays."""
        self._energy = None

    def check(self, atoms: Atoms) -> str | None:
        """None if the configuration is sane, else the reason it is not."""
        d = neighbor_list(atoms, self.min_distance, "d")
        if len(d):
            return f"atoms {float(np.min(d)):.2f} Å apart (floor {self.min_distance} Å)"
        forces = atoms.get_forces()
        energy = atoms.get_potential_energy() / len(atoms)
        if not (np.all(np.isfinite(forces)) and np.isfinite(energy)):
            return "non-finite energy or forces"
        if np.max(np.linalg.norm(forces, axis=1)) > self.max_force:
            return f"force {np.max(np.linalg.norm(forces, axis=1)):.1f} eV/Å above {self.max_force}"
        if self._energy is not None and abs(energy - self._energy) > self.max_energy_jump:
            return f"energy jumped {energy - self._energy:+.2f} eV/atom"
        self._energy = energy
        if self._volume:
            ratio = atoms.get_volume() / self._volume
            if not self.min_volume_ratio <= ratio <= self.max_volume_ratio:
                return f"cell volume changed {ratio:.2f}x"
        return None


@dataclass
class MDSettings:
    """One trajectory's protocol (docs/method.md §5): relax under `pressure` GPa (FIRE + FrechetCellFilter,
    fmax `fmax` eV/Å, ≤ `relax_steps`; a slab's periodic cell per `slab_cell`, see dael.explore.conditions),
    Maxwell–Boltzmann velocities at `temperature` K, `thermalize`
    unbiased steps, then `steps` biased steps of `dt` fs ('nvt': Langevin, friction `friction`/fs;
    'npt': isotropic MTK Nosé–Hoover chains at `pressure`), `snapshots` snapshots evenly spaced (or at
    uniformly random steps with `random_snapshots`, the random-MD baseline). `unstable` (eV/atom, None: off):
    after the thermalisation (no check without one), a cell that quenches more than this below the relaxed
    start's enthalpy is an unstable phase at this pressure and runs its biased steps on the driver alone (see
    `quench_drop`). `backoff`: a biased trajectory the guard stops goes back to its last sane check (every 10
    steps) and runs on with every bias strength halved, at most this many times (0: it stops at once)."""

    temperature: float = 300.0
    pressure: float = 0.0
    ensemble: str = "nvt"
    steps: int = 1000
    snapshots: int = 10
    dt: float = 1.0
    friction: float = 0.01
    thermalize: int = 0
    relax_steps: int = 200
    fmax: float = 0.05
    random_snapshots: bool = False
    seed: int = 0
    tdamp: float = 100.0
    pdamp: float = 1000.0
    guard: Guard = field(default_factory=Guard)
    unstable: float | None = None
    slab_cell: str = "fixed"
    backoff: int = BACKOFF

    def __post_init__(self) -> None:
        if self.ensemble not in ("nvt", "npt"):
            raise ValueError(f"ensemble must be 'nvt' or 'npt'; got {self.ensemble!r}")
        if self.steps < 1 or not 1 <= self.snapshots <= self.steps:
            raise ValueError(f"need 1 <= snapshots ({self.snapshots}) <= steps ({self.steps})")
        number("temperature (K)", self.temperature, above=0)
        number("dt (fs)", self.dt, above=0)
        number("pressure (GPa)", self.pressure)
        number("friction (1/fs)", self.friction, low=0)
        number("thermalize (steps)", self.thermalize, low=0, integer=True)
        number("relax_steps", self.relax_steps, low=0, integer=True)
        number("fmax (eV/Å)", self.fmax, above=0)
        number("backoff (bias halvings)", self.backoff, low=0, integer=True)
        if self.unstable is not None:
            number("unstable (eV/atom)", self.unstable, above=0)
        if self.slab_cell not in SLAB_CELLS:
            raise ValueError(f"slab_cell must be one of {', '.join(SLAB_CELLS)}; got {self.slab_cell!r}")

    def snapshot_steps(self) -> np.ndarray:
        if self.random_snapshots:
            rng = np.random.default_rng(self.seed + 7919)
            return np.sort(rng.choice(np.arange(1, self.steps + 1), self.snapshots, replace=False))
        return np.linspace(self.steps / self.snapshots, self.steps, self.snapshots).round().astype(int)


@dataclass
class Trajectory:
    """Snapshots (copies with energy/forces of the biased calculator dropped; info: step, entropy, the driver's
    energy per atom `driver_energy` and that of the relaxed start `relaxed_energy`, eV/atom) and how the run
    ended; quench_drop (eV/atom, NaN when not checked), whether the bias acted (see `quench_drop`) and each time
    the guard made it halve the bias ('step 230: atoms 0.45 Å apart (floor 0.7 Å)'; MDSettings.backoff)."""

    snapshots: list[Atoms]
    status: str
    steps_done: int
    quench_drop: float = float("nan")
    biased: bool = True
    halved: list[str] = field(default_factory=list)


def relax(atoms: Atoms, calc: Calculator, pressure: float, fmax: float, steps: int,
          slab_cell: str = "fixed") -> Atoms:
    """Relax with FIRE: bulk positions and cell under hydrostatic `pressure` GPa (FrechetCellFilter); a slab's or
    wire's positions, and with `slab_cell` 'relax' its periodic cell at zero stress; a molecule's positions
    (dael.explore.conditions: a non-bulk structure at a pressure other than 0 is a ValueError)."""
    atoms = atoms.copy()
    atoms.calc = calc
    if steps > 0:
        target = relaxation_target(atoms, pressure, slab_cell)
        with warnings.catch_warnings():  # scipy's logm of a near-identity cell, accurate to 1e-12, warns
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            FIRE(target, logfile=None).run(fmax=fmax, steps=steps)
    return atoms


UNSTABLE = 0.01
"""Default quench drop (eV/atom) above which a phase counts as unstable (MDSettings.unstable). Measured with
the reference oracle at every preset grid point (8-atom cells, 100 fs thermalisation, 3-4 seeds): stable
phases -0.002...+0.0001 (graphite's quench can stop in a nearby minimum just above its start), NaCl's B2 at
0 GPa 0.07-0.15 (docs/method.md §5)."""
QUENCH_FMAX = 0.01
"""eV/Å: force tolerance of the quenches that compare basins."""
QUENCH_STEPS = 300


def enthalpy(atoms: Atoms, pressure: float) -> float:
    """(E + P·V)/n in eV/atom with atoms' calculator, `pressure` in GPa."""
    work = pressure * GPA * atoms.get_volume() if pressure else 0.0  # a molecule may have no cell (no volume)
    return (atoms.get_potential_energy() + work) / len(atoms)


def quench_drop(start: Atoms, thermal: Atoms, driver: Calculator, pressure: float, slab_cell: str = "fixed") -> float:
    """How far (eV/atom) the thermalised cell's basin lies below the start's: both are quenched with the driver
    (positions and cell, FIRE, fmax QUENCH_FMAX, ≤ QUENCH_STEPS) and their enthalpies at `pressure` GPa
    compared. A stable phase returns to its own minimum (drop ≈ 0); a relaxed cell that sits on a saddle
    (symmetry holds it there: NaCl's B2 at 0 GPa) or in a shallow basin its thermal motion leaves slides
    into a lower basin (drop > 0)."""
    ends = [relax(a, driver, pressure, QUENCH_FMAX, QUENCH_STEPS, slab_cell) for a in (start, thermal)]
    return enthalpy(ends[0], pressure) - enthalpy(ends[1], pressure)


def run_md(atoms: Atoms, driver: Calculator, calc: Calculator, md: MDSettings) -> Trajectory:
    """Relax `atoms` with `driver`, then run `calc` (the driver, possibly wrapped in biases) per `md`; with
    md.unstable set, a phase the thermalisation shows unstable runs on the driver alone (`quench_drop`). A slab or
    molecule at a pressure other than 0 or in NPT is a ValueError (dael.explore.conditions)."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    check_phase(atoms.info.get("phase"), atoms, [md.pressure], md.ensemble, md.slab_cell)
    atoms = relax(atoms, driver, md.pressure, md.fmax, md.relax_steps, md.slab_cell)
    relaxed_energy = atoms.get_potential_energy() / len(atoms)
    rng = np.random.default_rng(md.seed)
    thermalize_momenta(atoms, temperature_K=md.temperature, rng=rng)
    Stationary(atoms)

    def integrator(a: Atoms):
        if md.ensemble == "nvt":
            return Langevin(a, md.dt * units.fs, temperature_K=md.temperature,
                            friction=md.friction / units.fs, fixcm=False, rng=rng)
        return IsotropicMTKNPT(a, md.dt * units.fs, temperature_K=md.temperature,
                               pressure_au=md.pressure * GPA, tdamp=md.tdamp * units.fs,
                               pdamp=md.pdamp * units.fs)

    start = atoms.copy()
    if md.thermalize:
        atoms.calc = driver
        integrator(atoms).run(md.thermalize)
    drop = float("nan")
    if md.unstable is not None and md.thermalize and calc is not driver:
        drop = quench_drop(start, atoms, driver, md.pressure, md.slab_cell)
        if drop > md.unstable:
            calc = driver
    biased = calc is not driver
    atoms.calc = calc
    dyn = integrator(atoms)
    md.guard.start(atoms)
    wanted = set(md.snapshot_steps().tolist())
    stops = sorted(wanted | set(range(10, md.steps + 1, 10)) | {md.steps})  # guard checks every 10 steps
    snapshots: list[Atoms] = []
    halved: list[str] = []
    sane = (0, atoms.get_positions(), atoms.get_momenta(), atoms.get_cell())  # the last state the guard passed
    done = 0
    while done < md.steps:
        stop = next(s for s in stops if s > done)
        dyn.run(stop - done)
        done = stop
        reason = md.guard.check(atoms)
        if reason is not None:
            if not isinstance(calc, EntropyBias) or len(halved) == md.backoff:
                more = f" (bias halved {len(halved)}×)" if halved else ""
                return Trajectory(snapshots, f"stopped at step {done}: {reason}{more}", done, drop, biased, halved)
            halved.append(f"step {done}: {reason}")
            halve_biases(calc)
            done = sane[0]
            atoms.set_cell(sane[3], scale_atoms=False)
            atoms.set_positions(sane[1])
            atoms.set_momenta(sane[2])
            dyn = integrator(atoms)  # a fresh integrator: NPT's thermostat and barostat restart
            md.guard.resume()
            continue
        sane = (done, atoms.get_positions(), atoms.get_momenta(), atoms.get_cell())
        if stop in wanted:
            snap = atoms.copy()
            driver_energy = driver.get_potential_energy(atoms) / len(atoms)
            snap.info.update({"step": int(stop), "entropy": float(calc.results.get("entropy", 0.0)),
                              "driver_energy": float(driver_energy), "relaxed_energy": float(relaxed_energy),
                              "quench_drop": drop, "biased": biased, "bias_factor": 0.5 ** len(halved)})
            snapshots.append(snap)
    return Trajectory(snapshots, "ok", done, drop, biased, halved)


def halve_biases(calc: Calculator) -> None:
    """Halve the strength k of every bias in the chain `calc` (dael.explore.md biases around a driver)."""
    layer = calc
    while isinstance(layer, EntropyBias):
        layer.k *= 0.5
        layer.reset()
        layer = layer.driver
