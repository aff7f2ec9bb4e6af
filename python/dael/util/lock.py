"""One runner per dataset: a lock beside the file a command writes (a campaign's dataset.db, `dael label --db`'s
database, a benchmark's labels.db), so that a second `dael run`, `label`, `train` or `benchmark` on it stops
at once with the host and PID that hold it, instead of labelling the same structures twice.

The lock is an `fcntl.flock` on FILE.lock: the kernel drops it when its process dies, even by kill -9, so no
stale lock is left. Where the filesystem has no locks (some cluster filesystems) the lock file itself is the
lock: it names host and PID, and a lock whose process is gone on this host is taken over; one held from another
host is refused with the command that removes it. `dael status` reads without the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["InUse", "holder", "locked"]

_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class InUse(ValueError):
    """The dataset is being written by another dael process."""


def _lock_file(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def holder(path: str | os.PathLike) -> dict | None:
    """Who holds the lock of `path` as its lock file says (host, pid, command, since), None when nobody."""
    try:
        text = _lock_file(Path(path)).read_text()
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refusal(path: Path, info: dict | None, command: str, remove: bool = False) -> InUse:
    who = (f"`{info.get('command', 'dael')}` (host {info.get('host')}, PID {info.get('pid')}, since "
           f"{info.get('since')})") if info else "another dael process"
    fix = (f"if that process is gone, remove {_lock_file(path)}" if remove else
           f"wait for it to finish, or stop it (kill {info.get('pid')}) and rerun" if info else "wait for it")
    return InUse(f"{path} is in use by {who}; `{command}` would write it at the same time: {fix}")


def _me(command: str) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "command": command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}


@contextmanager
def locked(path: str | os.PathLike, command: str | None = None) -> Iterator[None]:
    """Hold the lock of `path` (a file or folder; the lock is PATH.lock beside it) while the block runs; raise
    InUse (a ValueError naming host and PID of the holder and what to do) when another process holds it."""
    path = Path(path)
    command = command or " ".join(["dael", *sys.argv[1:]])
    lock = _lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refusal(path, holder(path), command) from None
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            os.close(fd)
            fd = -1
            with _held_by_file(path, command):
                yield
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me(command)).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        if fd >= 0:
            os.close(fd)  # closing drops the flock


@contextmanager
def _held_by_file(path: Path, command: str) -> Iterator[None]:
    """The lock file as the lock, for filesystems without flock."""
    lock = _lock_file(path)
    info = holder(path)
    if info is not None:
        mine = info.get("host") == socket.gethostname()
        if not mine or _alive(int(info.get("pid", -1))):
            raise _refusal(path, info, command, remove=not mine)
    me = _me(command)
    lock.write_text(json.dumps(me))
    try:
        yield
    finally:
        if holder(path) == me:
            lock.write_text("")
