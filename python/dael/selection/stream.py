"""The streaming filter (docs/method.md §3, §5): candidates in arrival order, each inside the energy window
joins the dataset state at once when its gain ΔH over the state as it is then exceeds min_gain.

The explorer runs it on each trajectory's snapshots as they arrive, a campaign labels the first N it accepts,
and the benchmark replays it over stored pools (`filter_rows`); the greedy alternative is `dael.selection.select`,
the pool screen `dael.selection.screen`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from dael.numeric.dual import DualEntropy, new_state
from dael.numeric.entropy import MIN_GAIN, GlobalEntropy
from dael.numeric.fingerprint import Fingerprints
from dael.numeric.natx import fingerprint_for
from dael.selection.window import in_window

__all__ = ["filter_rows", "stream_filter"]

State = GlobalEntropy | DualEntropy


def stream_filter(state: State, structures: Sequence[Atoms], window: float | None = None,
                  min_gain: float = MIN_GAIN, budget: int | None = None,
                  blocks: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream `structures` in order through `state` (changed in place). Those outside the energy window
    (`window` eV/atom above their thermal expectation, dael.selection.window; None: no window) are never judged;
    the others are fingerprinted with the state's settings, the state grown when a sphere needs a longer natx
    (or taken from `blocks`, one per-atom block per structure) and accepted while ΔH > min_gain (nats), at most
    `budget`.
    Returns (gains: NaN outside the window, accepted mask, inside-window mask), each of len(structures)."""
    inside = in_window(structures, window)
    gains, accepted = np.full(len(structures), np.nan), np.zeros(len(structures), dtype=bool)
    rows = np.flatnonzero(inside)
    if len(rows):
        if blocks is None:  # a sphere beyond the state's natx grows the state (dael.numeric.natx)
            judged: Fingerprints | list[np.ndarray] = fingerprint_for(state, [structures[i] for i in rows])
        else:
            judged = [blocks[i] for i in rows]
        gains[rows], accepted[rows] = state.stream(judged, min_gain, budget)
    return gains, accepted, inside


def filter_rows(structures: Sequence[Atoms], fps: Fingerprints, rows: np.ndarray, window: float | None,
                mode: str, eps: float, min_gain: float, budget: int | None = None,
                start: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """A campaign's streaming filter replayed over `rows` (indices into `structures` and their per-atom `fps`)
    in that order, from a new state in `mode` (ε `eps`) holding the per-atom blocks `start`: returns the rows
    inside the energy window and the mask of those it accepts."""
    rows = np.asarray(rows, dtype=np.int64)
    state = new_state(mode, eps, fps.settings)
    for block in start:
        state.add(block)
    _, accepted, inside = stream_filter(state, [structures[i] for i in rows], window, min_gain, budget,
                                        [fps.of(int(i)) for i in rows])
    return rows[inside], accepted[inside]
