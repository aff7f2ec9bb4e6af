"""The benchmark's MD-robustness evaluation (benchmark.robustness_sizes): each model of those sizes runs the MD
check of `dael check` (dael.check.robustness; its own MD, 64-atom cells, the hottest temperature at the highest
pressure and one step beyond, robustness_seeds trajectories of robustness_ps ps per phase and condition), so that
the report gives the failure fraction and the median time to failure per strategy."""

from __future__ import annotations

from dataclasses import dataclass

from ase import Atoms
from ase.calculators.calculator import Calculator

from dael.campaign.config import Campaign
from dael.check.robustness import md_robustness
from dael.check.settings import CheckSettings

SET = "robustness"
"""The evaluation set's name in evaluation.json and records.csv."""
RECORDED = ("failure_fraction", "median_time_to_failure_ps")
"""The robustness numbers records.csv keeps (the runs stay in each model's evaluation.json)."""


@dataclass
class Robustness:
    """What the robustness evaluation of a benchmark's models runs with."""

    seeds: dict[str, Atoms]
    pressures: list[float]
    temperatures: list[float]
    settings: CheckSettings
    sizes: frozenset[int]

    def wanted(self, n: int) -> bool:
        """Whether the models trained on n structures are evaluated."""
        return n in self.sizes

    def evaluate(self, calc: Calculator) -> dict:
        """md_robustness of the model `calc`."""
        return md_robustness(calc, self.seeds, self.pressures, self.temperatures, self.settings)


def robustness_of(campaign: Campaign, seeds: dict[str, Atoms]) -> Robustness | None:
    """The campaign's robustness evaluation (thresholds from model_check.settings), None when
    benchmark.robustness_sizes is empty."""
    b = campaign.benchmark
    if not b.robustness_sizes:
        return None
    settings = CheckSettings.from_dict({**campaign.model_check.settings, "checks": ["md"], "md_ps": b.robustness_ps,
                                        "seeds": b.robustness_seeds, "workers": 1, "seed": campaign.seed},
                                       "model_check.settings")
    return Robustness(seeds, list(campaign.explore.pressures), list(campaign.explore.temperatures), settings,
                      frozenset(b.robustness_sizes))
