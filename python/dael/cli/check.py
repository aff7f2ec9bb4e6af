"""`dael check`: is a trained model safe to use? Its own MD, phases, equation of state and phonons."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from ase.calculators.calculator import Calculator
from rich.table import Table

from dael.calculators.deploy import compile_model, compiled_agreement
from dael.calculators.registry import check_calculator, make_calculator
from dael.campaign.config import CONFIG
from dael.campaign.folder import load_or_preset
from dael.check import CHECKS, CheckSettings, check_model, lines
from dael.check.journal import identity, journal_header, journal_of, read_journal
from dael.cli.common import app, console, done, errors, fail, print_json
from dael.cli.label import key_values
from dael.explore.stability import repeats
from dael.util.files import write_atomic

REPORT = "check.json"
"""The result `dael check` writes into a model folder."""
AGREEMENT = {"energy_meV_per_atom": 0.01, "force_meV_per_A": 0.1}
"""--compile: the largest differences between the compiled and the eager model on the probe cell that are taken as
the same model (float64 models agree to about 1e-5 meV/atom and 1e-3 meV/Å)."""


def compiled(name: str, eager: Calculator, phases: dict, atoms: int, say: Callable[[str], None]
             ) -> tuple[str, Calculator, dict]:
    """--compile: the registry name and calculator of the AOTInductor build of the model `name` (allegro:PATH,
    loaded as `eager`; built beside the model by `dael deploy`'s compile_model, reused while newer than it) and
    its agreement with the eager model
    (dael.calculators.deploy.compiled_agreement) on the first seed phase, repeated to at least `atoms` atoms and
    rattled by 0.05 Å. A model that is not a trained allegro model, or a build that disagrees (AGREEMENT), is a
    ValueError."""
    kind, _, path = name.partition(":")
    if kind != "allegro":  # a compiled .nequip.pt2 is refused by compile_model itself
        raise ValueError(f"--compile needs a trained model to compile (a model folder, .nequip.zip or .ckpt); "
                         f"got {name!r}")
    say(f"compiling {path} (AOTInductor, minutes)")
    try:
        build = f"allegro:{compile_model(path, 'ase')}"
    except RuntimeError as exc:  # nequip-compile failed (its log's tail)
        raise ValueError(f"--compile: {exc}; check the model without --compile") from exc
    phase = next(iter(phases.values()))
    probe = phase.repeat(tuple(int(k) for k in repeats(phase, atoms)))
    probe.rattle(0.05, seed=0)
    calc = make_calculator(build)
    agreement = compiled_agreement(eager, calc, probe)
    worse = {k: agreement[k] for k, limit in AGREEMENT.items() if not agreement[k] <= limit}
    if worse:
        raise ValueError(f"the compiled model {build} differs from {name} by {worse} on a {len(probe)}-atom cell "
                         f"(limits {AGREEMENT}): check it without --compile")
    say(f"compiled: {agreement['ms_eager']:.1f} → {agreement['ms_compiled']:.1f} ms per call on {len(probe)} atoms, "
        f"energies within {agreement['energy_meV_per_atom']:.1e} meV/atom, forces {agreement['force_meV_per_A']:.1e} "
        "meV/Å")
    return build, calc, {"model": build, "atoms": len(probe), **agreement}


def model_name(model: str) -> tuple[str, Path | None]:
    """(registry name, model folder or None) of MODEL: a folder or a .nequip.zip/.ckpt file is `allegro:PATH`,
    anything else a calculator name (dael.calculators.registry)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return f"allegro:{path}", path
    if path.is_file():
        return f"allegro:{path}", None
    return model, None


def campaign_of(folder: Path | None, campaign: str | None) -> str:
    """--campaign, or the campaign a model folder sits in (CAMPAIGN/models/round-NN)."""
    if campaign is not None:
        return campaign
    if folder is not None and (folder.resolve().parent.parent / CONFIG).is_file():
        return str(folder.resolve().parent.parent)
    raise ValueError("--campaign is needed (a campaign folder or a preset: Si, C, NaCl): its seed phases, "
                     "pressures and temperatures are what the model is checked on")


@app.command()
def check(
    model: Annotated[str, typer.Argument(help="a dael model folder, a .nequip.zip or .ckpt, or a calculator name "
                                              "(allegro:PATH, chgnet, reference, ase:module:Class, ...)")],
    campaign: Annotated[str | None, typer.Option(
        help="campaign folder or preset (Si, C, NaCl): the seed phases, pressures and temperatures (default: the "
             "campaign the model folder is in)")] = None,
    ps: Annotated[float, typer.Option(help="ps of each MD trajectory")] = CheckSettings.md_ps,
    seeds: Annotated[int, typer.Option(help="MD trajectories per phase and condition")] = CheckSettings.seeds,
    atoms: Annotated[int, typer.Option(help="MD cells hold at least this many atoms")] = CheckSettings.atoms,
    checks: Annotated[str, typer.Option(help=f"comma-separated, of {','.join(CHECKS)}")] = ",".join(CHECKS),
    reference: Annotated[str | None, typer.Option(
        help="calculator whose relaxed phases and phonons the model must reproduce, e.g. reference (default: the "
             "campaign's model_check.reference; 'none': every phase must keep its space group and be stable)")]
    = None,
    param: Annotated[list[str] | None, typer.Option(
        help="parameter of the model's calculator, key=value (value read as JSON); repeatable")] = None,
    workers: Annotated[int, typer.Option(help="MD trajectories run in parallel (processes)")] = 1,
    compile_: Annotated[bool, typer.Option(
        "--compile", help="check the model compiled with AOTInductor (as `dael deploy`, beside the model; about 1.5× "
                          "faster MD on a CPU), after checking that it gives the eager model's energies and forces")]
    = False,
    out: Annotated[Path | None, typer.Option(
        help="write the result to this JSON file (default: check.json in a model folder); the MD runs are "
             "recorded as they finish beside it (NAME.runs.jsonl), and the same command again runs only those "
             "not yet run")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print the whole result as one JSON object")] = False,
) -> None:
    """Check a model: the failure fraction and time to failure of its own MD (64-atom cells, the hottest
    temperature at the highest pressure and one step beyond), and whether each seed phase keeps its space group
    under its relaxation at each pressure, has a smooth equation of state with one minimum and no imaginary
    phonon. Writes check.json into a model folder (or --out); an interrupted check resumes from its finished
    MD runs; exit 1 when a check fails."""
    params = key_values(param, example="--param sigma=2.0")
    say = errors.print if json_ else console.print
    build = None
    try:
        name, folder = model_name(model)
        check_calculator(name, **params)
        system = campaign_of(folder, campaign)
        calc = make_calculator(name, **params)  # a model that does not load is bad input
        config, phases = load_or_preset(system)
        # the campaign's thresholds (model_check.settings), the full check's lengths unless given here
        settings = CheckSettings.from_dict({**config.model_check.settings, "md_ps": ps, "seeds": seeds,
                                            "atoms": atoms, "workers": workers,
                                            "checks": [c.strip() for c in checks.split(",") if c.strip()]},
                                           "dael check")
        if reference is None:
            reference = config.model_check.reference
        elif reference.lower() == "none":
            reference = None
        if reference is not None:
            check_calculator(reference)
        if out is None and folder is not None:
            out = folder / REPORT
        if compile_:
            name, calc, build = compiled(name, calc, phases, settings.atoms, say)
        journal = None if out is None or "md" not in settings.checks else journal_of(out)
        model_id = identity(name)
        if journal is not None:  # a journal of another model or other settings is refused before any check runs
            read_journal(journal, journal_header(settings, model_id))
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    result = check_model(name if workers > 1 else calc, phases, config.explore.pressures,
                         config.explore.temperatures, settings, reference=reference, params=params, say=say,
                         journal=journal, identity=model_id)
    result["model"] = model_name(model)[0]
    if build is not None:
        result["compiled"] = build
    if out is not None:
        write_atomic(out, json.dumps(result, indent=1, allow_nan=False))
    if json_:
        print_json(result)
    else:
        table = Table(title=f"dael check {model}: {'passed' if result['passed'] else 'FAILED'}", show_header=False)
        for line in lines(result):
            check_name, _, text = line.partition(": ")
            verdict = "failed" if check_name in result["failed"] else "passed"
            table.add_row(check_name, verdict, text, f"{result['seconds'][check_name]:.0f} s")
        console.print(table)
        if out is not None:
            console.print(f"-> {out}")
    done(len(result["failed"]))
