"""Checks of user input, each raising one ValueError that names the bad value, says what is wrong and how
to fix it; every command and loader uses these instead of its own copy."""

from __future__ import annotations

import math
import os
from pathlib import Path


class DaelWarning(UserWarning):
    """Something dael did or could not check that the user should know (the command line prints it as one
    `warning:` line)."""


LARGEST = 1e100
"""Largest magnitude accepted in arrays handed to the native core: squares and sums of squares of such
numbers stay finite in float64 (1e200 · d < 1.8e308), so no overflow can poison an entropy state."""

SMALL = 1 << 28
"""Bytes of work that `require_memory` lets through without looking at the free memory."""


def number(name: str, value: object, *, low: float | None = None, high: float | None = None,
           above: float | None = None, integer: bool = False, infinite: bool = False) -> float:
    """`value` as a finite number (an int when `integer`; ±inf too when `infinite`, never NaN) with
    low <= value <= high and value > above; otherwise a ValueError naming `name`. Booleans are not numbers."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be {kind}; got {value!r}")
    if integer and not isinstance(value, int):
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError(f"{name} must be {kind}; got {value!r}")
        value = int(value)
    if math.isnan(value) or not (infinite or math.isfinite(value)):
        raise ValueError(f"{name} must be {'a number, not NaN' if infinite else 'a finite number'}; got {value}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low:g}; got {value:g}")
    if above is not None and not value > above:
        raise ValueError(f"{name} must be > {above:g}; got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}; got {value:g}")
    return value


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable on Linux; all physical memory else)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no sysconf
        return 1 << 62


def require_memory(need: float, what: str, fix: str) -> None:
    """Refuse work estimated to need `need` bytes when less is available (an allocation that fails aborts
    the whole process, so it must be stopped before it starts)."""
    if need < SMALL:
        return
    have = available_memory()
    if not need <= have:  # also refuses an estimate that overflowed to inf or NaN
        raise ValueError(f"{what} would need about {_size(need)} of memory, more than the {_size(have)} "
                         f"available; {fix}")


def _size(n: float) -> str:
    """Bytes as text: '12 MB', '3.4e+08 PB'."""
    if not math.isfinite(n):
        return "unbounded"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.3g} PB"


def output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """A file path that can be written: not a folder, in a folder that exists."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name, e.g. {path / 'out'}")
    if not path.parent.is_dir():
        raise ValueError(f"{option} {path}: the folder {path.parent} does not exist; create it first")
    return path


AUTO = "auto"
"""The one spelling of an automatic natx in the CLI and campaign.yaml (None in Python)."""


def natx_value(value: object, name: str = "--natx") -> int | None:
    """A natx given as 'auto' (or None): None, sized automatically; or a positive whole number of atoms
    per sphere. Anything else is a ValueError naming `name`."""
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be '{AUTO}' or a whole number of atoms per sphere; got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        raise ValueError(f"{name} must be '{AUTO}' (sized automatically) or >= 1; got 0")
    return int(number(name, value, low=1, integer=True))
