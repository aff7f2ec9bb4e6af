"""The journal of a model check's MD runs: each finished trajectory's record appended (fsynced) to a JSON-lines
file whose first line names the model and the MD settings, so that an interrupted `dael check` (or a round's
check in `dael run`) reruns only the trajectories it had not finished."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dael.check.settings import CheckSettings
from dael.util.files import write_atomic

SUFFIX = ".runs.jsonl"
"""A journal sits beside its check's result: check.json -> check.runs.jsonl."""


def journal_of(result: Path) -> Path:
    """The journal of the MD runs of the result file `result`."""
    return result.with_name(result.stem + SUFFIX)


def identity(name: str) -> dict:
    """What names a model in a journal: its registry name and, for an `allegro:PATH` model file or folder, the
    name, size and modification time of its files (a model retrained in place does not resume the old one's
    runs)."""
    kind, _, rest = name.partition(":")
    path = Path(rest).expanduser() if kind == "allegro" else None
    if path is None or not path.exists():
        return {"name": name}
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file() and p.suffix != ".json"
                                                 and not p.name.endswith(SUFFIX))
    return {"name": name, "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]}


MD_KEYS = ("md_ps", "seeds", "atoms", "beyond", "ensemble", "dt", "friction", "closest", "isolated",
           "max_energy_jump", "max_drop", "max_force", "seed")
"""The settings a trajectory depends on: a journal written under others is not resumed."""


def journal_header(settings: CheckSettings, identity: Any) -> dict:
    """The first line of an MD-robustness journal: what names the model, and the MD settings."""
    return {"model": identity, "settings": {k: getattr(settings, k) for k in MD_KEYS}}


def key(phase: Any, pressure: float, temperature: float, seed: int) -> str:
    """What a run is known by in a journal: its phase, conditions and seed."""
    return f"{phase} {float(pressure):g} GPa {float(temperature):g} K seed {int(seed)}"


def read_journal(journal: Path, header: dict) -> dict[str, dict]:
    """The runs recorded in `journal` by key (phase, conditions, seed), after checking that its first line is
    `header` (the same model and MD settings); {} when the file does not exist. A last line cut short by a kill is
    dropped."""
    if not journal.exists():
        return {}
    lines = journal.read_text().splitlines()
    try:
        first = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        first = None
    if first != header:
        changed = sorted(k for k in header["settings"] if first is None or
                         first.get("settings", {}).get(k) != header["settings"][k])
        what = "another model" if first is not None and first.get("model") != header["model"] else \
            f"other MD settings ({', '.join(changed) or 'no header'})"
        raise ValueError(f"{journal}: its MD runs were made with {what}; remove it to run the check afresh, or "
                         "write the result to another file")
    runs = {}
    for n, line in enumerate(lines[1:], start=2):
        try:
            run = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break
            raise ValueError(f"{journal}, line {n}: not a JSON run record; remove the file to run the check "
                             "afresh") from None
        runs[key(run["phase"], run["pressure_GPa"], run["temperature_K"], run["seed"])] = run
    return runs


class Journal:
    """Appends run records to a journal file (fsynced); nothing when there is no file. It starts as `header` and
    the runs read back from it (rewritten whole, so a line a kill cut short is gone)."""

    def __init__(self, path: Path | None, header: dict, done: list[dict]) -> None:
        self.file = None
        if path is not None:
            write_atomic(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in [header, *done]))
            self.file = open(path, "a")

    def write(self, record: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record, allow_nan=False) + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
