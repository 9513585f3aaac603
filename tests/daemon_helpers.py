"""A small, fast daemon configuration for tests, and releases made of real photographs."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from daemon.settings import (
    AlertSpec,
    DaemonSettings,
    DriftSettings,
    GateSettings,
    RegistrySpec,
    RetuneSettings,
)
from eliq.config import PairSettings
from eliq.critic import CriticConfig
from eliq.train import TrainSettings
from eliq.train.recipe import Recipe
from tests.conftest import photo_path

PHOTOS = {
    "astronaut.png": "an astronaut in a white spacesuit in front of a flag",
    "chelsea.png": "a tabby cat looking to the side",
    "coffee.png": "a cup of coffee on a white saucer",
    "rocket.jpg": "a white rocket on a launch pad",
    "motorcycle_left.png": "a red motorcycle parked next to a wall",
    "hubble_deep_field.jpg": "colorful galaxies in deep space",
}


def write_release(registry: Path, name: str, photos: list[str] | None = None) -> Path:
    """A release of stored outputs: copies of real photos and ``manifest.csv``, written under
    a hidden name and renamed, as the local registry asks."""
    photos = photos or list(PHOTOS)
    scratch = registry / f".{name}"
    scratch.mkdir(parents=True)
    with (scratch / "manifest.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["image", "prompt"])
        for photo in photos:
            shutil.copyfile(photo_path(photo), scratch / photo)
            writer.writerow([photo, f"{PHOTOS[photo]}, {name}"])
    scratch.rename(registry / name)
    return registry / name


def fast_settings(tmp_path: Path, registry: Path, **overrides) -> DaemonSettings:
    recipe = tmp_path / "recipe.json"
    Recipe(critic=CriticConfig(crops=2, dim=32, decoder_layers=1)).save(recipe)
    values = {
        "data_dir": tmp_path / "data",
        "registries": [RegistrySpec(name="team", kind="local", settings={"root": str(registry)})],
        "pairs": PairSettings(per_positive=2, batch_size=8),
        "retune": RetuneSettings(
            recipe=recipe,
            train=TrainSettings(steps=4, batch_pairs=6, held_out_fraction=0.2),
        ),
        "device": "cpu",
        # the cycle's mechanics, not the gate (tests/test_gate.py): six photos hold out a few pairs
        "gate": GateSettings(min_gain=-1.0, forgetting_margin=1.0, min_pairs=1, min_accuracy=0),
        "drift": DriftSettings(anchor_images_per_release=4),
        "alerts": [AlertSpec(kind="log")],
        "retry_backoff_s": 0.0,
        "api_port": None,  # a test that wants the API picks a free port
    }
    return DaemonSettings(**(values | overrides))


def free_port() -> int:
    """A TCP port nothing listens on right now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# for the daemon's own processes: offline, and one log line a line
DAEMON_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "400"}


def write_config(settings: DaemonSettings, folder: Path) -> Path:
    """``settings`` as the YAML file ``--config`` reads."""
    path = folder / "daemon.yaml"
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    return path


def wait_until(ready, service: subprocess.Popen, log: Path, seconds: float = 600) -> None:
    """Poll ``ready()`` until it holds, while the daemon process lives; a loaded machine
    may take minutes to import and start the API thread."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert service.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)


def api_answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def start_daemon(config: Path, log: Path) -> subprocess.Popen:
    """``eliq-daemon run --config CONFIG`` in its own process, its output in ``log``."""
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(config)],
            env=DAEMON_ENV,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
