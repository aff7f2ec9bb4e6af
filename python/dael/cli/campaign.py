"""Campaign commands: `dael init`, `dael run`, `dael status`, `dael demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dael.benchmark.demo import run_demo
from dael.calculators.registry import NAMES
from dael.campaign.config import CONFIG, Campaign
from dael.campaign.folder import load, write
from dael.campaign.loop import run as run_campaign
from dael.campaign.presets import phases, preset
from dael.campaign.status import status as campaign_status
from dael.cli.common import app, checked, console, errors, key_values, print_json
from dael.data.dataset import Dataset
from dael.data.structures import read_structures
from dael.label.cluster import cluster_settings
from dael.label.cluster import job_script as cluster_script
from dael.label.labelling import LABELS
from dael.util.periodicity import VACUUM


@app.command()
def init(
    system: Annotated[str | None, typer.Argument(help="a preset: Si, C or NaCl (any case); or give --structures")]
    = None,
    structures: Annotated[list[str] | None, typer.Option(
        help="structure files of the phases (anything ASE reads; FILE@N takes frame N); repeatable, or several "
             "after one flag")] = None,
    oracle: Annotated[str | None, typer.Option(help=f"the labelling calculator: {NAMES}")] = None,
    oracle_param: Annotated[list[str] | None, typer.Option(
        help="oracle parameter key=value (value read as JSON, else text); repeatable")] = None,
    driver: Annotated[str | None, typer.Option(
        help="the MD driver of round 1 [default: a foundation model covering the elements: chgnet]")] = None,
    pressures: Annotated[list[float] | None, typer.Option(help="pressures of the grid, GPa [default: 0]")] = None,
    temperatures: Annotated[list[float] | None, typer.Option(
        help="temperatures of the grid, K [default: 300 1000]")] = None,
    name: Annotated[str | None, typer.Option(help="the material's name [default: the seeds' formula]")] = None,
    vacuum: Annotated[float, typer.Option(help="Å of vacuum around a molecule given without a cell")] = VACUUM,
    dataset: Annotated[Path | None, typer.Option(
        help="labelled structures you have already (extxyz with energy and forces): trained on from round 1, "
             "not counted in the budget")] = None,
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite an existing campaign.yaml")] = False,
) -> None:
    """Write a campaign (campaign.yaml + seeds.extxyz): a preset (`dael init Si`) or your own structures
    (`dael init --structures Al.cif Al-hcp.cif --oracle gpaw`)."""
    with checked():
        if (system is None) == (not structures):
            raise ValueError("give a preset (dael init Si) or --structures FILE ..., one of the two")
        if structures and oracle is None:
            raise ValueError(f"--structures needs --oracle, the calculator that labels (one of: {NAMES}); no "
                             "stand-in oracle exists beyond the presets' Si, C and NaCl")
        if system is not None and (oracle or driver or oracle_param or pressures or temperatures or name):
            raise ValueError("--oracle, --driver, --oracle-param, --pressures, --temperatures and --name go with "
                             "--structures; a preset has its own (edit campaign.yaml after dael init)")
        if structures:
            campaign = Campaign.from_structures(structures, oracle, driver, key_values(oracle_param, "--oracle-param"),
                                                pressures, temperatures, name, vacuum)
        else:
            campaign = preset(system)
            campaign.seeds = phases(system)
        imported = read_structures(dataset) if dataset is not None else []
        path = write(dir, campaign, force=force)
        if imported:
            added = Dataset(Path(dir) / "dataset.db").add_labelled(imported, oracle=f"imported from {dataset.name}",
                                                                   campaign=campaign.name)
            console.print(f"{len(added.ids)} labelled structures of {dataset} stored as imported rows "
                          f"({len(added.duplicates)} duplicates skipped): trained on, not counted in the budget")
    seeds = campaign.seeds
    for note in campaign.notes:
        console.print(note)
    e = campaign.explore
    console.print(f"{path}: {campaign.system} campaign, phases {', '.join(seeds)}; oracle {campaign.label.oracle}, "
                  f"driver {campaign.driver}; pressures {e.pressures} GPa, temperatures {e.temperatures} K, bias "
                  f"{e.k_global} k_B·T per atom, budget {campaign.budget.total} labels in rounds of "
                  f"{campaign.budget.per_round} ({campaign.budget.anchor_fraction:.0%} anchors).")
    console.print(f"Edit them in {path} (explore.pressures, explore.temperatures, explore.k_global, budget.total; "
                  f"every key: docs/guide/campaign-yaml.md), then `dael run --dir {dir}`")


@app.command()
def run(
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    rounds: Annotated[int, typer.Option(help="stop after this many rounds (0: until the budget is spent)")] = 0,
    job_script: Annotated[bool, typer.Option(
        help="print the batch script label.cluster submits for each job, and exit")] = False,
) -> None:
    """Explore → filter → label → train until the budget is spent (resumable: rerun after any interruption)."""
    with checked():
        if job_script:
            campaign, _ = load(dir)
            if campaign.label.cluster is None:
                raise ValueError(f"{dir / CONFIG}: label.cluster is not set: no jobs to print (docs/guide/cluster.md)")
            settings = cluster_settings(campaign.label.cluster, timeout=campaign.label.timeout)
            typer.echo(cluster_script(settings, dir.resolve() / LABELS / "jobs"), nl=False)
            return
        state = run_campaign(dir, say=console.print, max_rounds=rounds or None)
    _print_status(state)


@app.command()
def status(
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
) -> None:
    """Round, budget used, dataset, entropy, latest model errors and failures of a campaign."""
    with checked():
        state = campaign_status(dir)
    if json_:
        print_json(state)
    else:
        _print_status(state)


def _print_status(state: dict) -> None:
    table = Table(title=f"campaign: {state['system']}", show_header=False)
    logdet = "n/a" if state["logdet"] is None else f"{state['logdet']:.3f} nats"
    validation = state["validation"] or {}
    stopped = state["trajectories_stopped_by_reason"]
    rows = {"round": state["round"], "budget used": f"{state['budget']['used']} / {state['budget']['total']}"
            + (f" (+ {state['imported']} imported)" if state["imported"] else ""),
            "dataset": ", ".join(f"{k} {v}" for k, v in state["dataset"].items()) or "empty",
            "log det (dataset)": logdet, "latest model": state["model"] or "none",
            "validation MAE": ", ".join(f"{k} {v:.2f}" for k, v in validation.items() if v is not None) or "n/a",
            "latest model check": _check_row(state.get("check")),
            "label failures": state["label_failures"],
            "trajectories stopped early": ", ".join(f"{n} {k}" for k, n in stopped.items()) or 0,
            "trajectories unbiased (unstable phase)": len(state["trajectories_unbiased"]),
            "trajectories with the bias halved (guard)": len(state["trajectories_bias_halved"]),
            "stopped": state["stopped"] or "not yet"}
    labels = state.get("versions", {}).get("labels") or {}
    if labels:  # what made the labels and the latest model (dael.util.provenance)
        first, *others = labels
        rows["versions (labels)"] = (first or "not recorded") + (f" (+{len(others)} other)" if others else "")
    if state.get("versions", {}).get("model"):
        rows["versions (latest model)"] = state["versions"]["model"]
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)
    for r in state["rounds"]:
        test = r.get("test") or {}
        curve = (f"; {r['structures']} structures: test " + ", ".join(f"{k} {v:.2f}" for k, v in test.items()
                                                                    if v is not None)) if test else ""
        console.print(f"round {r['round']}: driver {r.get('driver')} ({r.get('driver_reason')}); {r.get('stop')}; "
                      f"labelled {r.get('labelled', 'n/a')}, failed {r.get('failed', 'n/a')}{curve}")
    for line in state["trajectories_stopped"][:10]:
        errors.print(f"  {line}")
    check = state.get("check")
    if check and not check["passed"]:
        for line in check["summary"]:
            errors.print(f"  round {check['round']} check: {line}")


def _check_row(check: dict | None) -> str:
    """The status table's line of the latest model check: 'round 2: passed', 'round 2: failed: md, eos
    (MD: 3 of 8 trajectories failed, median 0.42 ps)'."""
    if check is None:
        return "none"
    text = f"round {check['round']}: {check['headline']}"
    md = check.get("md")
    if md and md["failed"]:
        text += (f" (MD: {md['failed']} of {md['trajectories']} trajectories failed, median "
                 f"{md['median_time_to_failure_ps']:g} ps)")
    return text


@app.command()
def demo(dir: Annotated[Path, typer.Option(help="folder of the demo campaign")] = Path("demo")) -> None:
    """A small real campaign on Si with the embedded reference oracle: rounds of explore → filter →
    label → train until its 80 labels are spent, then a small entropy-vs-random benchmark and its HTML report
    (13 min on 2 idle cores)."""
    run_demo(dir, say=console.print, on_rounds=_print_status)
