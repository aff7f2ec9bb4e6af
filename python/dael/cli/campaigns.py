"""Campaign commands: `dael init`, `dael run`, `dael status`, `dael benchmark`, `dael demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dael.cli.common import _print_json, app, checked, console, errors, fail


@app.command()
def init(
    system: Annotated[str, typer.Argument(help="preset: Si, C or NaCl (any case)")],
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite an existing campaign.yaml")] = False,
) -> None:
    """Write a campaign (campaign.yaml + seeds.extxyz) with the preset of SYSTEM."""
    from dael.campaign.config import phases, preset, write

    with checked():
        campaign = preset(system)
        path = write(dir, campaign, phases(system), force=force)
    console.print(f"{path}: {campaign.system} campaign; edit it, then `dael run --dir {dir}`")


@app.command()
def run(
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    rounds: Annotated[int, typer.Option(help="stop after this many rounds (0: until the budget is spent)")] = 0,
) -> None:
    """Explore → filter → label → train until the budget is spent (resumable: rerun after any interruption)."""
    from dael.campaign.loop import run as run_campaign

    with checked():
        state = run_campaign(dir, say=console.print, max_rounds=rounds or None)
    _print_status(state)


@app.command()
def status(
    dir: Annotated[Path, typer.Option(help="campaign folder")] = Path("."),
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
) -> None:
    """Round, budget used, dataset, entropy, latest model errors and failures of a campaign."""
    from dael.campaign.loop import status as campaign_status

    with checked():
        state = campaign_status(dir)
    if json_:
        _print_json(state)
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
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)
    for line in state["trajectories_stopped"][:10]:
        errors.print(f"  {line}")


@app.command()
def benchmark(
    system: Annotated[str, typer.Argument(help="preset (Si, C, NaCl) or a campaign folder")],
    out: Annotated[Path | None, typer.Option(help="benchmark folder (default: benchmark-SYSTEM)")] = None,
    sizes: Annotated[list[int] | None, typer.Option(help="training-set sizes (repeat the option)")] = None,
    draws: Annotated[int, typer.Option(help="independent draws per size (0: the config's)")] = 0,
    epochs: Annotated[int, typer.Option(help="training epochs per model, at least (0: the config's)")] = 0,
    min_steps: Annotated[int | None, typer.Option(
        help="optimizer steps per model, at least [default: the config's]")] = None,
    anchor_fraction: Annotated[float | None, typer.Option(
        help="anchor share of the mixed pool, 0-1 [default: the config's]")] = None,
    repeats: Annotated[int, typer.Option(help="MD seeds per grid point of the pools (0: the config's)")] = 0,
    strategies: Annotated[str, typer.Option(help="selection strategies, comma-separated: stream, stream-fill, "
                                                 "stream-md, seeded, mixed, mixed-md, random-anchored, "
                                                 "random-anchored-stream, greedy-atom, "
                                                 "greedy-config, entropy-random, random, direct, quests-msc, "
                                                 "quests-fps, quests-kmeans, or 'all'")]
    = "stream,stream-fill,mixed,random-anchored,entropy-random,random",
    from_: Annotated[str | None, typer.Option(
        "--from", help="fine-tune every model from this base: a .nequip.zip or a dael model directory (e.g. "
                       "`dael distill`'s folder) [default: train from scratch]")] = None,
    device: Annotated[str | None, typer.Option(
        help="'cpu' or 'cuda' for training and inference [default: the campaign's train.settings, else cpu]")]
    = None,
    pools_only: Annotated[bool, typer.Option(
        "--pools-only", help="explore, label and draw the training sets; train nothing (a later run trains, "
                             "e.g. with --no-oracle on a GPU machine)")] = False,
    no_oracle: Annotated[bool, typer.Option(
        "--no-oracle", help="train and evaluate on the folder's labelled pools without the oracle or an MD driver "
                            "(e.g. on a GPU machine without LAMMPS); the model's own MD is evaluated by a later "
                            "run with them")] = False,
) -> None:
    """Selection strategies vs random MD on the same pools and training: learning curves, MD stability and an
    HTML report."""
    from dael.benchmark.run import run_benchmark
    from dael.campaign.config import load_or_preset, source
    from dael.util.device import check_device

    try:
        campaign, seeds = load_or_preset(system)
        if device is not None:
            campaign.train.settings["device"] = device
        check_device(campaign.train.settings.get("device", "cpu"))
        b = campaign.benchmark
        b.sizes = sizes or b.sizes
        b.draws = draws or b.draws
        b.epochs = epochs or b.epochs
        b.min_steps = b.min_steps if min_steps is None else min_steps
        b.anchor_fraction = b.anchor_fraction if anchor_fraction is None else anchor_fraction
        b.repeats = repeats or b.repeats
        campaign.check()
        from dael.benchmark.strategies import STRATEGIES, check_strategies

        chosen = check_strategies(list(STRATEGIES) if strategies == "all" else
                                  [x.strip() for x in strategies.split(",") if x.strip()])
        report = run_benchmark(campaign, seeds, out or Path(f"benchmark-{campaign.system}"),
                               say=console.print, strategies=chosen, base=from_,
                               where=source(system), oracle=not no_oracle, pools_only=pools_only)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"pools and sets: {report}" if pools_only else f"report: {report}")


@app.command()
def demo(dir: Annotated[Path, typer.Option(help="folder of the demo campaign")] = Path("demo")) -> None:
    """A small real campaign on Si with the embedded reference oracle: two rounds of explore → filter →
    label → train, then a small entropy-vs-random benchmark and its HTML report (7.4 min on 2 idle cores)."""
    from dael.benchmark.demo import run_demo

    run_demo(dir, say=console.print, on_rounds=_print_status)

