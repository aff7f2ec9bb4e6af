"""The check of a round's model (campaign.yaml's model_check; dael.check): run after the round's training, its
whole result kept as models/round-NN/check.json (its MD runs journalled in check.runs.jsonl as they finish, so a
campaign killed inside the check resumes it), a summary returned for the round's log entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ase import Atoms

from dael.campaign.config import Campaign
from dael.check import check_model, headline, lines
from dael.check.journal import identity, journal_header, journal_of, read_journal
from dael.util.files import write_atomic

REPORT = "check.json"
"""The whole check result, in the model's folder (as `dael check` writes it)."""


def check_round(campaign: Campaign, seeds: dict[str, Atoms], model: Path, say: Callable[[str], None]) -> dict:
    """Check the model in folder `model` with the campaign's seeds, grid and model_check settings; write
    model/check.json; return the log entry: model, passed, failed (check names), summary (one sentence per
    check), md (trajectories, failed, failure_fraction, median_time_to_failure_ps) and seconds."""
    c = campaign.model_check
    say(f"checking {model} ({', '.join(c.checks)}; {c.seeds} × {c.md_ps:g} ps MD per phase and condition)")
    name = f"allegro:{model}"
    settings, journal = c.check_settings(), journal_of(Path(model) / REPORT)
    try:
        read_journal(journal, journal_header(settings, identity(name)))
    except ValueError as exc:  # the round's model was trained again, or model_check edited: its runs are stale
        say(f"  {exc.args[0].split(';')[0]}: checking afresh")
        journal.unlink()
    result = check_model(name, seeds, campaign.explore.pressures, campaign.explore.temperatures, settings,
                         reference=c.reference, journal=journal, identity=identity(name))
    result["model"] = name
    write_atomic(Path(model) / REPORT, json.dumps(result, indent=1, allow_nan=False))
    summary = lines(result)
    for line in summary:
        say(f"  {line}")
    entry = {"model": str(model), "passed": result["passed"], "failed": result["failed"],
             "headline": headline(result), "summary": summary, "seconds": result["seconds"]}
    if "md" in result:
        entry["md"] = {k: result["md"][k] for k in ("trajectories", "failed", "failure_fraction",
                                                    "median_time_to_failure_ps")}
    return entry
