"""Every check of a model in one call (`check_model`), and the sentences that say how it went (`lines`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from dael.calculators.registry import make_calculator
from dael.check.physics import equation_of_state, phase_retention, phonon_stability, relax_all
from dael.check.robustness import md_robustness
from dael.check.settings import CHECKS, CheckSettings

Say = Callable[[str], None]


def check_model(model: str | Calculator, seeds: dict[str, Atoms], pressures: list[float],
                temperatures: list[float], settings: CheckSettings | None = None,
                reference: str | Calculator | None = None, params: dict[str, Any] | None = None,
                say: Say | None = None, journal: Path | None = None, identity: Any = None) -> dict:
    """Run settings.checks on `model` (a calculator, or a registry name built with `params`) for the seed phases
    and the grid `pressures` (GPa) × `temperatures` (K): 'md' (dael.check.robustness.md_robustness), 'phases',
    'eos', 'phonons' (dael.check.physics). `reference` (a calculator or a registry name, e.g. the oracle when it
    is cheap): the phases and phonons it gives are what the model must reproduce (a phase the reference itself
    does not keep, or finds unstable, is expected to behave so); None: every seed phase must keep its space
    group and be free of imaginary phonons at every pressure.
    `journal`, `identity`: the MD runs' journal file and what names the model in it (md_robustness): an
    interrupted check rerun with the same journal runs only the trajectories not yet run.

    Returns a JSON-ready dict (no NaN or infinity): passed, failed (the names of the checks that failed), one
    entry per check run (each with its own passed), seconds per check, and the settings, grid and reference."""
    s = settings or CheckSettings()
    calc = model if isinstance(model, Calculator) else make_calculator(model, **(params or {}))
    ref = make_calculator(reference) if isinstance(reference, str) else reference
    pressures = [float(p) for p in pressures]
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    relaxed: dict = {}
    for name in [c for c in CHECKS if c in s.checks]:
        start = time.perf_counter()
        if say is not None:
            say(f"check {name}")
        if name == "md":
            out[name] = md_robustness(model if s.workers > 1 else calc, seeds, pressures, temperatures, s,
                                      params=params, say=say, journal=journal, identity=identity)
        elif name == "phases":
            out[name] = phase_retention(calc, seeds, pressures, s, ref, say)
        elif name == "eos":
            relaxed |= relax_all(calc, seeds, [0.0], s)
            out[name] = equation_of_state(calc, seeds, s, relaxed, say)
        else:
            relaxed |= relax_all(calc, seeds, [p for p in pressures if not any(k[1] == p for k in relaxed)], s)
            out[name] = phonon_stability(calc, seeds, pressures, s, ref, relaxed, say)
        seconds[name] = round(time.perf_counter() - start, 1)
    failed = [name for name in out if not out[name]["passed"]]
    result = {"passed": not failed, "failed": failed, **out, "seconds": seconds,
              "grid": {"pressures_GPa": pressures, "temperatures_K": [float(t) for t in temperatures],
                       "phases": list(seeds)},
              "reference": reference if isinstance(reference, str) or reference is None else type(reference).__name__,
              "settings": s.to_dict()}
    return finite(result)


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (in nested dicts and lists) replaced by None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def lines(result: dict) -> list[str]:
    """One sentence per check of a check_model result: what passed, what failed and where."""
    out = []
    if "md" in result:
        md = result["md"]
        text = f"md: {md['failed']} of {md['trajectories']} trajectories of {md['ps']:g} ps failed"
        if md["failed"]:
            kinds = ", ".join(f"{k} {n}" for k, n in md["by_kind"].items())
            text += f" ({kinds}); median time to failure {md['median_time_to_failure_ps']:g} ps"
        out.append(text)
    if "phases" in result:
        lost = [f"{e['phase']} {e['pressure_GPa']:g} GPa → {e['relaxed'] or e.get('reason')}"
                for e in result["phases"]["phases"] if not e["kept"]]
        n = len(result["phases"]["phases"])
        out.append(f"phases: {n - len(lost)} of {n} kept their space group" + (f" (lost: {'; '.join(lost)})"
                                                                              if lost else ""))
    if "eos" in result:
        bad = [f"{e['phase']}: {e['reason']}" for e in result["eos"]["phases"] if not e["passed"]]
        out.append("eos: " + ("smooth with one minimum for every phase" if not bad else "; ".join(bad)))
    if "phonons" in result:
        entries = result["phonons"]["phases"]
        bad = [f"{e['phase']} {e['pressure_GPa']:g} GPa {e['lowest_cm1']} cm⁻¹"
               + ("" if e["expected_stable"] else " (expected unstable)") + (f" {e['reason']}" if "reason" in e
                                                                            else "")
               for e in entries if not e["passed"]]
        known = [e for e in entries if e["lowest_cm1"] is not None]
        low = min(known, key=lambda e: e["lowest_cm1"]) if known else None
        lowest = "no frequency computed" if low is None else (
            f"lowest {low['lowest_cm1']:g} cm⁻¹ ({low['phase']} {low['pressure_GPa']:g} GPa"
            + ("" if low["expected_stable"] else ", unstable in the reference too") + ")")
        out.append(f"phonons: {lowest}" + (f"; failed: {'; '.join(bad)}" if bad else ", none failed"))
    return out


def headline(result: dict) -> str:
    """'passed' or 'failed: md, phonons'."""
    return "passed" if result["passed"] else f"failed: {', '.join(result['failed'])}"
