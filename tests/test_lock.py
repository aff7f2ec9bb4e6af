"""One runner per dataset: a second writer is refused with the holder's host and PID; the lock dies with its
process (kill -9 included); filesystems without locks fall back to a lock file whose staleness is checked."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dael.util import lock
from dael.util.lock import InUse, holder, locked


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    db = tmp_path / "dataset.db"
    with locked(db, "dael run --dir x"):
        info = holder(db)
        assert info["pid"] == os.getpid() and info["command"] == "dael run --dir x"
        with pytest.raises(InUse, match=rf"in use by `dael run --dir x` \(host {socket.gethostname()}, "
                                        rf"PID {os.getpid()}.*kill {os.getpid()}"):
            with locked(db, "dael label"):
                pass
    assert holder(db) is None
    with locked(db, "dael label"):  # free again
        pass


def test_the_lock_dies_with_a_killed_process(tmp_path):
    db = tmp_path / "dataset.db"
    code = (f"import time; from dael.util.lock import locked\nwith locked({str(db)!r}, 'dael run'):\n"
            "    print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(InUse, match=f"PID {child.pid}"):
            with locked(db, "dael run"):
                pass
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    with locked(db, "dael run"):  # no stale lock after kill -9
        assert holder(db)["pid"] == os.getpid()


def test_without_filesystem_locks_a_stale_lock_file_is_taken_over(tmp_path, monkeypatch):
    def unsupported(fd, op):
        raise OSError(errno.ENOLCK, "no locks on this filesystem")

    monkeypatch.setattr(lock.fcntl, "flock", unsupported)
    db = tmp_path / "dataset.db"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "dataset.db.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid,
                                                          "command": "dael run", "since": "earlier"}))
    with locked(db, "dael run"):  # its process is gone on this host: taken over
        assert holder(db)["pid"] == os.getpid()
        with pytest.raises(InUse, match=f"PID {os.getpid()}"):
            with locked(db, "dael label"):
                pass
    assert holder(db) is None
    (tmp_path / "dataset.db.lock").write_text(json.dumps({"host": "login-7", "pid": 1, "command": "dael run",
                                                          "since": "earlier"}))
    with pytest.raises(InUse, match=r"host login-7.*if that process is gone, remove .*dataset.db.lock"):
        with locked(db, "dael run"):
            pass


def test_label_and_train_refuse_a_dataset_in_use(tmp_path):
    from typer.testing import CliRunner

    from dael.cli import app

    db = tmp_path / "dataset.db"
    with locked(db, "dael run --dir camp"):
        for args in (["label", "--db", str(db)], ["train", "--db", str(db), "--out", str(tmp_path / "m")]):
            db.touch()
            started = time.perf_counter()
            res = CliRunner().invoke(app, args)
            assert res.exit_code == 2 and "in use by `dael run --dir camp`" in res.output, res.output
            assert time.perf_counter() - started < 30
