"""`dael benchmark`: selection strategies against random MD on the same pools, labels and training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dael.benchmark.run import run_benchmark
from dael.benchmark.strategies import DEFAULT_STRATEGIES, GROUP_NAMES, STRATEGIES, check_strategies
from dael.campaign.folder import load_or_preset, source
from dael.cli.common import app, console, fail
from dael.util.device import check_device

STRATEGY_HELP = "selection strategies, comma-separated: " + "; ".join(
    f"{group}: {', '.join(n for n, s in STRATEGIES.items() if s.group == key)}"
    for group, key in (("dael's", "dael"), ("controls", "control"), ("peers' methods", "peer"))) + \
    f"; or {', '.join(GROUP_NAMES)} (every peer method) or all"


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
    strategies: Annotated[str, typer.Option(help=STRATEGY_HELP)] = ",".join(DEFAULT_STRATEGIES),
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
        chosen = check_strategies([x.strip() for x in strategies.split(",") if x.strip()])
        report = run_benchmark(campaign, seeds, out or Path(f"benchmark-{campaign.system}"),
                               say=console.print, strategies=chosen, base=from_,
                               where=source(system), oracle=not no_oracle, pools_only=pools_only)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"pools and sets: {report}" if pools_only else f"report: {report}")
