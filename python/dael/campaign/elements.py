"""The round before round 1: do the MD driver and the oracle accept every element of the seeds? The driver
computes the smallest seeds that hold every element, the oracle labels them (kept as labelled anchors of round 0,
counted in the budget), so that a wrong oracle setting or an uncovered element fails at once, before any MD, with
the cause and the fix."""

from __future__ import annotations

from collections.abc import Callable

from ase import Atoms

from dael.calculators.registry import make_calculator
from dael.campaign.config import Campaign
from dael.campaign.paths import Paths
from dael.data.dataset import Dataset, oracle_spec
from dael.label.labelling import label_dataset, label_options
from dael.util.files import mark, marked

__all__ = ["check_seeds"]

Say = Callable[[str], None]


def _covering(seeds: dict[str, Atoms]) -> list[str]:
    """The smallest seeds that together hold every element (greedy, smallest first)."""
    left = {s for a in seeds.values() for s in a.get_chemical_symbols()}
    chosen = []
    for phase in sorted(seeds, key=lambda p: (len(seeds[p]), p)):
        found = set(seeds[phase].get_chemical_symbols()) & left
        if found:
            chosen.append(phase)
            left -= found
    return chosen


def check_seeds(campaign: Campaign, seeds: dict[str, Atoms], paths: Paths, driver: str, where: str,
                say: Say) -> None:
    """Before round 1 (once; marker round-00/done-seeds): the driver computes the smallest seeds that hold every
    element, and the oracle labels them into the dataset as anchors of round 0 (counted in the budget, kept as
    training data). One ValueError names the seed, its elements, the calculator and its error, and the fix."""
    if marked(paths.done(0, "seeds")) is not None:
        return
    phases = _covering(seeds)
    calc = make_calculator(driver, **campaign.driver_params)
    for phase in phases:
        probe = seeds[phase].copy()
        probe.calc = calc
        try:
            probe.get_potential_energy()
            probe.get_forces()
        except Exception as exc:  # any calculator's error
            raise ValueError(f"{where}: driver {driver} cannot compute seed {phase} ({probe.get_chemical_formula()}"
                             f"): {type(exc).__name__}: {exc}; give a driver that covers "
                             f"{', '.join(sorted(set(probe.get_chemical_symbols())))}") from exc
    lab = campaign.label
    spec = oracle_spec(lab.oracle, lab.params)
    dataset = Dataset(paths.dataset)
    dataset.add([seeds[p] for p in phases], oracle=spec, campaign=campaign.name, round=0, source="anchor")
    dataset.reassign(spec, ("pending", "failed"), round=0)  # label.oracle or label.params edited since a failure
    say(f"round 0: labelling the seeds {', '.join(phases)} with {lab.oracle} (every element, before any MD)")
    label_dataset(dataset, lab.oracle, lab.params, **label_options(lab))  # where the rounds label: Dask, batch jobs
    failed = list(dataset.structures("failed", round=0))
    if failed:
        a = failed[0]
        raise ValueError(f"{where}: the oracle {lab.oracle} {lab.params or ''} failed on seed {a.info.get('phase')} "
                         f"({a.get_chemical_formula()}): {a.info.get('error')}; fix label.oracle or label.params, "
                         f"then rerun `dael run --dir {paths.root}` (the seed is labelled again)")
    paths.round(0).mkdir(parents=True, exist_ok=True)
    mark(paths.done(0, "seeds"), {"phases": phases, "driver": driver, "oracle": spec})
