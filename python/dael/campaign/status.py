"""Where a campaign stands (`dael status`), read from its folder without the runner's lock: budget, dataset,
entropy, the latest model's errors, each round's driver and why it stopped, and the trajectories the blow-up
guard stopped, counted by reason."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from dael.campaign.folder import load
from dael.campaign.paths import Paths
from dael.data.dataset import Dataset
from dael.train.training import model_versions

__all__ = ["guard_reason", "spent", "status"]


def guard_reason(status: str) -> str:
    """The kind of a trajectory's stop, numbers left out ('stopped at step 40: atoms 0.37 Å apart (floor 0.7 Å)'
    → 'atoms too close'); a failure is 'failed: <exception type>'."""
    kinds = {r"atoms .* apart": "atoms too close", r"^force ": "force too large", r"energy jumped": "energy jump",
             r"cell volume": "cell volume change", r"non-finite": "non-finite energy or forces"}
    reason = re.sub(r"^stopped at step \d+: ", "", status)
    if status.startswith("failed:"):
        return "failed: " + status.split(":")[1].strip()
    return next((kind for pattern, kind in kinds.items() if re.search(pattern, reason)), reason)


def spent(dataset: Dataset) -> int:
    """Structures the campaign has sent to its oracle: every row but the imported ones (`dael init --dataset`)."""
    return len(dataset) - sum(dataset.counts(source="imported").values())


def _rounds(log: list[dict]) -> list[dict]:
    """One summary per round: its driver and why, why its exploration stopped, what it labelled and trained."""
    rounds: dict[int, dict] = {}
    for entry in log:
        if entry["stage"] in ("end", "check"):
            continue
        r = rounds.setdefault(entry["round"], {"round": entry["round"]})
        if entry["stage"] == "select":
            r.update({k: entry.get(k) for k in ("driver", "driver_reason", "stop", "accepted", "selected", "notes")})
        elif entry["stage"] == "label":
            r.update({"labelled": entry.get("labeled"), "failed": entry.get("failed")})
        elif entry["stage"] == "train":
            r.update({"model": entry.get("model"), "structures": entry.get("structures"),
                      "validation": entry.get("validation"), "test": entry.get("test")})
    return [rounds[k] for k in sorted(rounds)]


def status(folder: str | os.PathLike) -> dict:
    """Round, budget used, dataset counts, entropy, errors, the rounds and why the campaign stopped (JSON-able)."""
    campaign, _ = load(folder)
    paths = Paths(Path(folder))
    log = [json.loads(x) for x in (paths.root / "log.jsonl").read_text().splitlines()] \
        if (paths.root / "log.jsonl").exists() else []
    dataset = Dataset(paths.dataset)
    counts = dict(dataset.counts()) if paths.dataset.exists() else {}
    states = [e for e in log if e["stage"] == "label" and "logdet" in e] or \
        [e for e in log if e["stage"] == "select"]
    trains = [e for e in log if e["stage"] == "train"]
    checks = [e for e in log if e["stage"] == "check"]
    ends = [e for e in log if e["stage"] == "end"]
    trajectories = [json.loads(x) for f in sorted(paths.root.glob("rounds/round-*/explore/trajectories.jsonl"))
                    for x in f.read_text().splitlines()]
    stopped = [t for t in trajectories if t["status"] != "ok"]
    unbiased = [t for t in trajectories if "unstable_drop" in t]
    halved = [t for t in trajectories if t.get("bias_halved")]
    return {
        "system": campaign.system,
        "round": max((e["round"] for e in log if e["stage"] != "end"), default=0),
        "budget": {"total": campaign.budget.total, "used": spent(dataset)},
        "imported": sum(dataset.counts(source="imported").values()),
        "dataset": counts,
        "logdet": states[-1]["logdet"] if states else None,
        "model": trains[-1]["model"] if trains else None,
        "validation": trains[-1]["validation"] if trains else None,
        "check": checks[-1] if checks else None,
        "rounds": _rounds(log),
        "stopped": ends[-1]["reason"] if ends else None,
        "trajectories_stopped": [f"{t['name']}: {t['status']}" for t in stopped],
        "trajectories_stopped_by_reason": dict(Counter(guard_reason(t["status"]) for t in stopped)),
        "trajectories_unbiased": [f"{t['name']}: quench {t['unstable_drop']:+.3f} eV/atom" for t in unbiased],
        "trajectories_bias_halved": [f"{t['name']}: {'; '.join(t['bias_halved'])}" for t in halved],
        "label_failures": counts.get("failed", 0),
        "versions": {"labels": dataset.versions(),
                     "model": model_versions(trains[-1]["model"]) if trains else None},
    }
