"""Thread count of dael's native (rayon) work; 0 means RAYON_NUM_THREADS or all cores."""

_threads = 0


def set_num_threads(n: int) -> None:
    """Use `n` rayon worker threads for native calls (0 = default: RAYON_NUM_THREADS or all cores)."""
    global _threads
    if int(n) < 0:
        raise ValueError(f"number of threads must be >= 0 (0 = default); got {n}")
    _threads = int(n)


def get_num_threads() -> int:
    """The configured native thread count (0 = default)."""
    return _threads


def resolve(threads: int | None) -> int:
    """Per-call override, falling back to the configured default."""
    if threads is None:
        return _threads
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = default); got {threads}")
    return int(threads)
