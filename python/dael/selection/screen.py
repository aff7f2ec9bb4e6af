"""Screen structure pools of any size against a dataset's global entropy (docs/method.md §4).

The pool (any files ASE reads: extxyz, ASE db, trajectories, ...) is streamed in chunks of `chunk`
structures, so memory stays bounded; each chunk is fingerprinted (in this process, or on Dask workers)
and its structures are judged by their exact entropy gain ΔH against the dataset state:

- method 'stream' (the authors' filter): in pool order, a structure with ΔH > min_gain joins the state at
  once, until `budget` are taken. Every finished chunk is committed to the work folder (accepted
  structures, then the state with their checksum), so an interrupted run resumes after its last committed chunk.
- methods 'auto', 'exact', 'lazy' (greedy, named as in `dael.select`): a first pass keeps the `shortlist`
  structures of largest ΔH against the dataset (a bounded heap, checkpointed), then greedy selection (exact,
  lazy, or 'auto': exact up to 5000 shortlisted, lazy beyond) picks `budget` of them, and a last pass over
  the pool copies the picks out.

The work folder is OUT.work beside the output. Its run.json records the content hash (SHA-256) of every pool
file, the options and the dataset state; a rerun resumes only when all of them are equal (and says so),
otherwise it starts over. Resumed pieces are verified (the state files must load, each chunk's extxyz must
match its checksum); the first damaged piece and everything after it are redone. The folder is removed when
the run finishes.

An optional `NoveltyIndex` of the dataset skips structures whose fingerprints all lie within
`min_distance` of dataset entries before any gain is computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from dael.numeric.entropy import MIN_GAIN, GlobalEntropy
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings
from dael.selection.greedy import EXACT_UP_TO, METHODS
from dael.selection.index import NoveltyIndex
from dael.selection.pool import Tagged, chunks, fingerprinted, iter_pool
from dael.util.checks import number
from dael.util.files import concat_files, savez_atomic, write_atomic, write_extxyz


def check_options(budget: int, min_gain: float, method: str, chunk: int, min_distance: float = 0.0) -> None:
    """Raise ValueError for options a screen cannot run with (before any structure is read)."""
    if method not in METHODS:
        hint = "; greedy selection is 'auto', 'exact' or 'lazy'" if method == "greedy" else ""
        raise ValueError(f"method must be one of {', '.join(METHODS)} (as in dael.select); got {method!r}{hint}")
    number("budget (structures to keep)", budget, low=1, integer=True)
    number("chunk (structures per chunk)", chunk, low=1, integer=True)
    number("min_gain (nats)", min_gain, infinite=True)
    number("min_distance", min_distance, low=0)


@dataclass
class ScreenResult:
    """What a screen kept: (file, frame) of each pick, its gain (nats), the counts seen and skipped (by the
    novelty index, or `dense`: a fingerprint sphere larger than natx)."""

    picks: list[tuple[int, int]]
    gains: list[float]
    seen: int
    skipped: int
    state: GlobalEntropy
    seconds: float
    extra: dict = field(default_factory=dict)
    dense: int = 0


def shortfall(result: ScreenResult, budget: int, min_gain: float) -> str | None:
    """Why a screen kept fewer than `budget` structures and how to fill it; None when it kept `budget`."""
    kept = len(result.picks)
    if kept >= budget:
        return None
    candidates = result.seen - result.skipped
    novelty = result.skipped - result.dense
    if candidates <= kept:
        why = (f"the pool held only {result.seen:,} structures" + (f", {novelty:,} of them skipped by the "
               "novelty index (lower --min-distance to keep them)" if novelty else "") + (
               f", {result.dense:,} refused for a sphere larger than natx (a larger --natx judges them)"
               if result.dense else ""))
        return f"kept {kept} of --budget {budget}: {why}; give a larger pool to fill the budget"
    fix = ("lower --min-gain (0 keeps anything that adds information) or give a more diverse pool" if min_gain > 0
           else "give a more diverse pool (the others add no information the dataset lacks; a negative --min-gain "
                "would keep them anyway)")
    return (f"kept {kept} of --budget {budget}: after {kept} picks none of the other {candidates - kept:,} "
            f"candidates raised the entropy by more than --min-gain {min_gain:g} nats; to fill the budget {fix}")


class Screen:
    """One screening run with its work folder `work` (created; reused to resume)."""

    def __init__(self, pool: Sequence[str | os.PathLike], out: str | os.PathLike, state: GlobalEntropy,
                 settings: FingerprintSettings, budget: int, min_gain: float = MIN_GAIN, method: str = "stream",
                 chunk: int = 500, shortlist: int | None = None, index: NoveltyIndex | None = None,
                 min_distance: float = 0.0, dask: str | None = None):
        check_options(budget, min_gain, method, chunk, min_distance)
        if index is not None and index.settings != settings:
            raise ValueError(f"the novelty index was built with {index.settings}, not {settings}")
        self.pool = [str(p) for p in pool]
        self.out = Path(out)
        self.work = self.out.with_name(self.out.name + ".work")
        self.state, self.settings = state, settings
        self.budget, self.min_gain, self.method, self.chunk = int(budget), float(min_gain), method, int(chunk)
        self.shortlist = int(shortlist or max(20 * budget, 1000))
        self.index, self.min_distance, self.dask = index, float(min_distance), dask
        if state.settings is None:
            state.settings = settings
        elif state.settings != settings:
            raise ValueError(f"the dataset state was built with {state.settings}, not {settings}")

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _options(self) -> dict:
        """What a resumed run must share with the interrupted one: inputs' content, options, dataset state."""
        state = hashlib.sha256()
        for array in (self.state.arrays().values() if self.state.dim else ()):
            state.update(np.ascontiguousarray(array).tobytes())
        return {"pool": self.pool, "pool_sha256": [_digest(Path(p)) for p in self.pool],
                "budget": self.budget, "min_gain": self.min_gain, "method": self.method, "chunk": self.chunk,
                "shortlist": self.shortlist, "mode": self.state.mode, "eps": self.state.eps,
                "settings": self.settings.to_dict(), "min_distance": self.min_distance,
                "index": None if self.index is None else len(self.index),
                "state_n": self.state.n, "state_sha256": state.hexdigest()}

    def _open_work(self, say: Callable[[str], None]) -> bool:
        """Create the work folder, or keep it when it holds a run of the same inputs and options (True)."""
        run = self.work / "run.json"
        options = self._options()
        if self.work.exists():
            try:
                same = json.loads(run.read_text()) == options
            except (OSError, ValueError):
                same = False
            if same:
                return True
            say(f"{self.work} holds a screen of other pool contents, options or dataset: starting over")
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        write_atomic(run, json.dumps(options, indent=1).encode())
        return False

    def _keep(self, fps: Fingerprints) -> np.ndarray:
        """Mask of the chunk's structures that pass the novelty pre-filter."""
        if self.index is None or self.min_distance <= 0 or len(self.index) == 0:
            return np.ones(len(fps), dtype=bool)
        return self.index.novelty(fps) > self.min_distance

    # -- run -----------------------------------------------------------------------------------------
    def run(self, progress: Callable[[int, int], None] | None = None,
            say: Callable[[str], None] = lambda line: None) -> ScreenResult:
        """Screen the pool and write the picks to `out` (extxyz with file, frame, gain in atoms.info).
        progress(seen, picked) is called after every chunk; say(line) tells what is resumed or redone."""
        start = time.perf_counter()
        resume = self._open_work(say)
        result = self._stream(progress, resume, say) if self.method == "stream" else \
            self._greedy(progress, resume, say)
        shutil.rmtree(self.work)
        result.seconds = time.perf_counter() - start
        return result

    def _resumed_chunks(self, say: Callable[[str], None]) -> list[dict]:
        """The committed chunks of an interrupted stream, verified in order; the first damaged one (a state
        that does not load, an extxyz that does not match its checksum) and all after it are deleted."""
        good: list[dict] = []
        for k in range(len(list(self.work.glob("chunk-*.npz")))):
            npz, xyz = self.work / f"chunk-{k:06d}.npz", self.work / f"chunk-{k:06d}.extxyz"
            piece = _load_npz(npz)
            if piece is None or not xyz.is_file() or _digest(xyz) != str(piece.get("extxyz_sha256")):
                say(f"{npz.name} or {xyz.name} in {self.work} is damaged: redoing from chunk {k}")
                for stale in [*self.work.glob("chunk-*.npz"), *self.work.glob("chunk-*.extxyz")]:
                    if int(stale.name[6:12]) >= k:
                        stale.unlink()
                break
            good.append(piece)
        return good

    def _stream(self, progress, resume: bool, say: Callable[[str], None]) -> ScreenResult:
        done = self._resumed_chunks(say) if resume else []
        picks: list[tuple[int, int]] = []
        gains: list[float] = []
        seen = skipped = dense = 0
        if done:
            last = done[-1]
            self.state = self.state.restored(last["n"], last["mean"], last["scatter"])
            seen, skipped, dense = int(last["seen"]), int(last["skipped"]), int(last["dense"])
            for z in done:
                picks += [tuple(p) for p in z["picks"].tolist()]
                gains += z["gains"].tolist()
            say(f"resuming the screen in {self.work}: {len(done)} chunks ({seen:,} structures, {len(picks)} "
                "kept) were done before with the same pool contents and options")
        first = len(done)
        blocks = islice(chunks(iter_pool(self.pool), self.chunk), first, None)
        for k, (block, (fps, fits)) in enumerate(fingerprinted(blocks, self.settings, self.dask), start=first):
            if len(picks) >= self.budget:
                break
            keep = np.flatnonzero(self._keep(fps) & fits)
            dense += int((~fits).sum())
            chosen: list[int] = []
            g = np.zeros(0)
            if len(keep):
                g, accepted = self.state.stream([fps.of(int(i)) for i in keep], self.min_gain,
                                                self.budget - len(picks))
                chosen = keep[accepted].tolist()
                g = g[accepted]
            seen, skipped = seen + len(block), skipped + len(block) - len(keep)
            tags = [(block[i][0], block[i][1]) for i in chosen]
            xyz = self.work / f"chunk-{k:06d}.extxyz"
            _write_picks(xyz, [block[i] for i in chosen], g)
            _commit(self.work / f"chunk-{k:06d}.npz", self.state, picks=np.array(tags, np.int64).reshape(-1, 2),
                    gains=g, seen=seen, skipped=skipped, dense=dense, extxyz_sha256=_digest(xyz))
            picks += tags
            gains += g.tolist()
            if progress:
                progress(seen, len(picks))
        committed = len(list(self.work.glob("chunk-*.npz")))  # an extxyz without its npz is not committed
        concat_files([self.work / f"chunk-{k:06d}.extxyz" for k in range(committed)], self.out)
        return ScreenResult(picks, gains, seen, skipped, self.state, 0.0, dense=dense)

    def _greedy(self, progress, resume: bool, say: Callable[[str], None]) -> ScreenResult:
        ckpt = self.work / "shortlist.npz"
        rows, offsets, scores = np.zeros((0, self.settings.length)), np.zeros(1, np.int64), np.zeros(0)
        tags: list = []
        first = seen = skipped = dense = 0
        z = _load_npz(ckpt) if resume and ckpt.exists() else None
        if z is not None:
            rows, offsets, scores = z["rows"], z["offsets"], z["scores"]
            tags = [tuple(t) for t in z["tags"].tolist()]
            first, seen, skipped, dense = int(z["chunks"]), int(z["seen"]), int(z["skipped"]), int(z["dense"])
            say(f"resuming the screen in {self.work}: {seen:,} structures were shortlisted before with the "
                "same pool contents and options")
        elif resume and ckpt.exists():
            say(f"{ckpt} is damaged: shortlisting from the start")
        shortlist = _Shortlist(rows, offsets, scores, tags, self.shortlist)
        last_save = time.monotonic()
        blocks = islice(chunks(iter_pool(self.pool), self.chunk), first, None)
        for k, (block, (fps, fits)) in enumerate(fingerprinted(blocks, self.settings, self.dask), start=first):
            keep = np.flatnonzero(self._keep(fps) & fits)
            dense += int((~fits).sum())
            if len(keep):
                sub = [fps.of(int(i)) for i in keep]
                shortlist.offer(sub, self.state.gains(sub), [(block[i][0], block[i][1]) for i in keep])
            seen, skipped = seen + len(block), skipped + len(block) - len(keep)
            if time.monotonic() - last_save > 30:
                shortlist.save(ckpt, chunks=k + 1, seen=seen, skipped=skipped, dense=dense)
                last_save = time.monotonic()
            if progress:
                progress(seen, 0)
        shortlist.save(ckpt, chunks=first + 10**9, seen=seen, skipped=skipped, dense=dense)
        cands = shortlist.blocks()
        lazy = self.method == "lazy" or (self.method == "auto" and len(cands) > EXACT_UP_TO)
        picks, gains = self.state.greedy(cands, self.budget, self.min_gain, lazy=lazy)
        chosen = {shortlist.tags[int(p)]: float(g) for p, g in zip(picks, gains, strict=True)}
        found = [(f, i, a) for f, i, a in iter_pool(self.pool) if (f, i) in chosen]
        order = {t: n for n, t in enumerate(chosen)}
        found.sort(key=lambda t: order[(t[0], t[1])])
        _write_picks(self.out, found, np.array([chosen[(f, i)] for f, i, _ in found]))
        return ScreenResult(list(chosen), list(chosen.values()), seen, skipped, self.state, 0.0,
                            {"shortlist": len(shortlist.scores)}, dense=dense)


class _Shortlist:
    """The `size` candidate blocks of largest score seen so far."""

    def __init__(self, rows, offsets, scores, tags, size: int):
        self.parts = [np.asarray(rows)[offsets[c]:offsets[c + 1]] for c in range(len(scores))]
        self.scores, self.tags, self.size = np.asarray(scores, dtype=np.float64), list(tags), size

    def offer(self, parts: list[np.ndarray], scores: np.ndarray, tags: list) -> None:
        self.parts += [np.asarray(p) for p in parts]
        self.scores = np.concatenate([self.scores, scores])
        self.tags += tags
        if len(self.scores) > self.size:
            top = np.sort(np.argsort(-self.scores, kind="stable")[: self.size])
            self.parts = [self.parts[t] for t in top]
            self.scores = self.scores[top]
            self.tags = [self.tags[t] for t in top]

    def blocks(self) -> list[np.ndarray]:
        return self.parts

    def save(self, path: Path, **counts) -> None:
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in self.parts])]).astype(np.int64)
        rows = np.concatenate(self.parts) if self.parts else np.zeros((0, 1))
        savez_atomic(path, rows=rows, offsets=offsets, scores=self.scores,
                      tags=np.array(self.tags, np.int64).reshape(-1, 2), **counts)


def _digest(path: Path) -> str:
    """SHA-256 of a file's content, hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Every array of an .npz file, or None when it is missing, truncated or not an .npz."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        return None


def _commit(path: Path, state: GlobalEntropy, **arrays) -> None:
    savez_atomic(path, **state.arrays(), **arrays)


def _write_picks(path: Path, tagged: list[Tagged], gains: np.ndarray) -> None:
    """Write picked structures as extxyz (atomically), recording file, frame and gain in atoms.info."""
    structures = []
    for (f, i, atoms), g in zip(tagged, gains, strict=True):
        atoms = atoms.copy()
        atoms.info.update({"pool_file": int(f), "pool_frame": int(i), "gain": float(g)})
        structures.append(atoms)
    write_extxyz(path, structures)
