"""Thread counts: of dael's native (rayon) work (0 means RAYON_NUM_THREADS or all cores), of child and
worker processes (one helper each)."""

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


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
"""The environment variables that set the thread pools of OpenMP, BLAS and rayon (native dael)."""


def thread_env(threads: int, **extra: str) -> dict[str, str]:
    """Environment for a child process: this one's, with `threads` threads for OpenMP, BLAS and rayon, and
    the `extra` variables."""
    return {**os.environ, **{k: str(threads) for k in THREAD_VARIABLES}, **extra}


def limit_process(threads: int) -> None:
    """Give this whole process `threads` threads (OpenMP/BLAS variables for libraries loaded later, dael's
    rayon calls, torch if installed). For worker processes only: it changes global state."""
    os.environ.update({k: str(threads) for k in THREAD_VARIABLES})
    set_num_threads(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
