"""Campaign commands: `dael init`, `dael run`, `dael status`, `dael demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dael.benchmark.demo import run_demo
from dael.campaign.config import CONFIG
from dael.campaign.folder import load, write
from dael.campaign.loop import run as run_campaign
from dael.campaign.loop import status as campaign_status
from dael.campaign.presets import phases, preset
from dael.cli.common import app, checked, console, errors, print_json
from dael.label.cluster import cluster_settings
from dael.label.cluster import job_script as cluster_script
from dael.label.labelling import LABELS


@app.command()
def init(
    system: Annotated[str, typer.Argument(help="preset: Si, C or NaCl (any case)")],
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite an existing campaign.yaml")] = False,
) -> None:
    """Write a campaign (campaign.yaml + seeds.extxyz) with the preset of SYSTEM."""
    with checked():
        campaign = preset(system)
        path = write(dir, campaign, phases(system), force=force)
    console.print(f"{path}: {campaign.system} campaign; edit it, then `dael run --dir {dir}`")


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
    rows = {"round": state["round"], "budget used": f"{state['budget']['used']} / {state['budget']['total']}",
            "dataset": ", ".join(f"{k} {v}" for k, v in state["dataset"].items()) or "empty",
            "log det (dataset)": logdet, "latest model": state["model"] or "none",
            "validation MAE": ", ".join(f"{k} {v:.2f}" for k, v in validation.items() if v is not None) or "n/a",
            "label failures": state["label_failures"],
            "trajectories stopped early": len(state["trajectories_stopped"]),
            "trajectories unbiased (unstable phase)": len(state["trajectories_unbiased"])}
    labels = state.get("versions", {}).get("labels") or {}
    if labels:  # what made the labels and the latest model (dael.util.provenance)
        first, *others = labels
        rows["versions (labels)"] = (first or "not recorded") + (f" (+{len(others)} other)" if others else "")
    if state.get("versions", {}).get("model"):
        rows["versions (latest model)"] = state["versions"]["model"]
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)
    for line in state["trajectories_stopped"][:10]:
        errors.print(f"  {line}")


@app.command()
def demo(dir: Annotated[Path, typer.Option(help="folder of the demo campaign")] = Path("demo")) -> None:
    """A small real campaign on Si with the embedded reference oracle: two rounds of explore → filter →
    label → train, then a small entropy-vs-random benchmark and its HTML report (7.4 min on 2 idle cores)."""
    run_demo(dir, say=console.print, on_rounds=_print_status)
