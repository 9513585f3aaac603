"""Exactly one daemon acts per database: a second process cannot take the lock while the
first holds it, and takes it once the first dies (even by SIGKILL)."""

import subprocess
import sys
import time

import pytest

from daemon.state.database import make_engine
from daemon.state.lock import LeaderLock, LockHeld
from tests.postgres import fresh_database

HOLDER = """
import sys, time
from daemon.state.lock import LeaderLock
from daemon.state.database import make_engine
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


def first_runs_together(data_dir, database_url=None, processes=3):
    """``eliq-daemon once`` started ``processes`` times at once on a fresh state (and an
    empty registry, so each does everything but the cycle): their exit statuses and logs."""
    import json
    import os
    from pathlib import Path

    registry = Path(data_dir) / "registry"
    registry.mkdir(parents=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ELIQ_DATA_DIR": str(data_dir),
        "ELIQ_REGISTRIES": json.dumps(
            [{"name": "team", "kind": "local", "settings": {"root": str(registry)}}]
        ),
    }
    if database_url:
        env["ELIQ_DATABASE_URL"] = database_url
    daemon = str(Path(sys.executable).with_name("eliq-daemon"))
    started = [
        subprocess.Popen(
            [daemon, "once"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(processes)
    ]
    return [(p.wait(timeout=600), p.stdout.read()) for p in started]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_daemons_started_together_on_a_fresh_state_all_finish(kind, tmp_path):
    """Three first runs at once, twice: the schema is made once, every process finishes
    cleanly (two of three used to crash on "table alerts already exists")."""
    for round_ in range(2):
        if kind == "sqlite":
            results = first_runs_together(tmp_path / f"round{round_}")
        else:
            with fresh_database() as url:
                results = first_runs_together(tmp_path / f"round{round_}", url)
        for status, output in results:
            assert status == 0 and "Traceback" not in output, output[-3000:]


def test_demo_registries_seeded_together_hold_one_whole_release(tmp_path):
    """Daemons started together on the embedded defaults each seed the demo registry: one
    complete release comes of it, and no scratch folder is left behind."""
    from concurrent.futures import ProcessPoolExecutor

    from daemon.demo import DEMO_RELEASE, seed_demo_registry

    with ProcessPoolExecutor(3) as pool:
        list(pool.map(seed_demo_registry, [tmp_path] * 3))
    registry = tmp_path / "registry"
    assert [p.name for p in registry.iterdir()] == [DEMO_RELEASE]
    manifest = (registry / DEMO_RELEASE / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 25  # a header and the 24 corner crops


def test_reregister_refuses_while_a_daemon_acts(tmp_path):
    """Registering every version again beside a daemon that registers as it goes would
    race it: while another process holds the lock, reregister says so and does nothing."""
    import os
    from pathlib import Path

    data = tmp_path / "data"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ELIQ_DATA_DIR": str(data),
        "ELIQ_REGISTRIES": "[]",
        "COLUMNS": "400",  # one line, as Rich wraps at the terminal's width
    }
    daemon = str(Path(sys.executable).with_name("eliq-daemon"))
    made = subprocess.run([daemon, "once"], env=env, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    url = f"sqlite:///{data / 'state.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = subprocess.run(
            [daemon, "reregister"], env=env, capture_output=True, text=True, timeout=600
        )
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 1
    assert "another daemon holds" in refused.stdout and "stop that daemon" in refused.stdout
