"""Exactly one daemon acts per database: a second process cannot take the lock while the
first holds it, and takes it once the first dies (even by SIGKILL)."""

import subprocess
import sys
import time

import pytest

from daemon.lock import LeaderLock, LockHeld
from daemon.state import make_engine
from tests.postgres import fresh_database

HOLDER = """
import sys, time
from daemon.lock import LeaderLock
from daemon.state import make_engine
lock = LeaderLock(make_engine(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def check_one_leader(url):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = LeaderLock(make_engine(url))
        with pytest.raises(LockHeld):
            lock.acquire()
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 60
    while True:  # the server or the kernel frees a dead holder's lock
        try:
            lock.acquire()
            break
        except LockHeld:
            assert time.monotonic() < deadline, "the lock outlived its holder"
            time.sleep(0.2)
    with pytest.raises(LockHeld):
        LeaderLock(make_engine(url)).acquire()
    lock.release()
    with LeaderLock(make_engine(url)):
        pass


def test_sqlite_file_lock_across_processes(tmp_path):
    check_one_leader(f"sqlite:///{tmp_path / 'state.db'}")


def test_postgres_advisory_lock_across_processes():
    with fresh_database() as url:
        check_one_leader(url)
