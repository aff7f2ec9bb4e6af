"""What made a label or a model, as one line of text stored with it: dael's version (with the git commit when it
runs from a checkout), the oracle code's version where it reports one, and the installed versions of ASE,
nequip, allegro and torch, e.g. 'dael 0.1.0 (git 2869edb); GPAW 25.1.0; ase 3.29.0; torch 2.13.0+cpu'."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
import sys
from pathlib import Path

__all__ = ["PACKAGES", "dael_version", "distribution_version", "installed", "versions"]

PACKAGES = {"ase": "ase", "nequip": "nequip", "allegro": "nequip-allegro", "torch": "torch"}
"""Name in the text → Python distribution, recorded when installed (read from its metadata, never imported)."""


@functools.cache
def dael_version() -> str:
    """dael's version, with ' (git COMMIT)' (and '-dirty' for uncommitted changes) when it runs from a checkout."""
    version = getattr(sys.modules.get("dael"), "__version__", "unknown")
    root = Path(__file__).resolve().parents[3]  # python/dael/util/provenance.py -> the repository
    if not ((root / ".git").exists() and (root / "Cargo.toml").is_file()):
        return version
    try:
        found = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=10"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return version
    commit = found.stdout.strip()
    return f"{version} (git {commit})" if found.returncode == 0 and commit else version


@functools.cache
def distribution_version(name: str) -> str | None:
    """The installed version of the distribution `name`, None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def installed() -> dict[str, str]:
    """Name → version of the :data:`PACKAGES` installed here."""
    return {name: v for name, dist in PACKAGES.items() if (v := distribution_version(dist)) is not None}


def versions(code: str | None = None) -> str:
    """The provenance line: dael, then `code` (e.g. 'VASP 6.4.2'; None: none), then :func:`installed`."""
    parts = [f"dael {dael_version()}", *([code] if code else []), *(f"{k} {v}" for k, v in installed().items())]
    return "; ".join(parts)
