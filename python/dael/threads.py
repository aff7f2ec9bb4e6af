"""Thread count of dael's native (rayon) work; 0 means RAYON_NUM_THREADS or all cores."""

import os

_threads = 0
MAX_PER_CORE = 4
"""At most this many native threads per core: more only costs memory and start-up (10⁶ hang for minutes)."""


def _checked(n: int, name: str) -> int:
    cap = MAX_PER_CORE * (os.cpu_count() or 1)
    if not 0 <= int(n) <= cap:
        raise ValueError(f"{name} must be between 0 (default) and {cap} ({MAX_PER_CORE} × {os.cpu_count()} "
                         f"cores); got {n}")
    return int(n)


def set_num_threads(n: int) -> None:
    """Use `n` rayon worker threads for native calls (0 = default: RAYON_NUM_THREADS or all cores)."""
    global _threads
    _threads = _checked(n, "number of threads")


def get_num_threads() -> int:
    """The configured native thread count (0 = default)."""
    return _threads


def resolve(threads: int | None) -> int:
    """Per-call override, falling back to the configured default."""
    return _threads if threads is None else _checked(threads, "threads")
