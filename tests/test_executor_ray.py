"""The sampling step on a real local Ray instance (2 CPU workers) against the local
executor: the same files, byte for byte, and a worker killed mid-step loses nothing."""

import os
import shutil
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from adapters.executors import create_executor
from adapters.executors.local import LocalExecutor
from daemon.cycle import Cycle
from daemon.settings import SamplingSettings
from daemon.state import PairSetRecord, ReleaseRecord, ReleaseState, SampleSet
from daemon.status import collect_status
from tests.daemon_helpers import fast_settings
from tests.tiny_diffusers import build_tiny_pipeline

ray = pytest.importorskip("ray")
PROMPTS = 6


@pytest.fixture(scope="module")
def ray_executor():
    executor = create_executor("ray", workers=2)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("pipeline") / "tiny")


def rendering_release(pipeline: Path, steps: int = 2) -> ReleaseRecord:
    return ReleaseRecord(
        id="hub:team/tiny@1",
        registry_name="team",
        source="huggingface",
        name="team/tiny",
        appeared_at=datetime(2026, 12, 1, tzinfo=UTC),
        sequence=1,
        loader={
            "kind": "diffusers",
            "ref": str(pipeline),
            "options": {"device": "cpu", "default_steps": steps, "size": [64, 64]},
        },
    )


def sampled_cycle(tmp_path: Path, pipeline: Path, executor, steps: int = 2) -> Cycle:
    tmp_path.mkdir(exist_ok=True)
    settings = fast_settings(
        tmp_path,
        tmp_path / "registry",
        sampling=SamplingSettings(prompts=PROMPTS, seed=7, shard_prompts=2),
    )
    cycle = Cycle(settings, executor=executor)
    release = cycle.store.add(rendering_release(pipeline, steps))
    assert cycle.advance(release), cycle.store.release(release.id).last_error
    return cycle


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def samples_and_pairs(tmp_path: Path, pipeline: Path, executor) -> tuple[dict, str]:
    """The sampled files and the pair set's digest of one release, in a fresh data
    directory at ``tmp_path`` (pair provenance names the samples by absolute path)."""
    shutil.rmtree(tmp_path, ignore_errors=True)
    cycle = sampled_cycle(tmp_path, pipeline, executor)
    release = cycle.store.release("hub:team/tiny@1")
    samples = files(cycle.folder(release) / "samples")
    assert cycle.advance(release), cycle.store.release(release.id).last_error  # build pairs
    (pair_set,) = cycle.store.rows(PairSetRecord)
    assert pair_set.pairs > 0
    cycle.engine.dispose()
    return samples, pair_set.digest


def test_ray_samples_and_pairs_are_those_of_the_local_executor(tmp_path, pipeline, ray_executor):
    local = samples_and_pairs(tmp_path / "run", pipeline, LocalExecutor())
    on_ray = samples_and_pairs(tmp_path / "run", pipeline, ray_executor)
    assert on_ray == local
    names = [name for name in local[0] if name.endswith(".png")]
    assert names == [f"{i:05d}-s{7 + i}.png" for i in range(PROMPTS)]


def kill_one_worker_once_rendering(killed: list[int], deadline_s: float = 120) -> None:
    """SIGKILL the first Ray worker process seen running a shard."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not killed:
        for process in psutil.process_iter(["pid", "cmdline"]):
            if "render_shard" in " ".join(process.info["cmdline"] or []):
                os.kill(process.info["pid"], signal.SIGKILL)
                killed.append(process.info["pid"])
                return
        time.sleep(0.05)


def test_a_worker_killed_while_sampling_leaves_no_duplicate_or_missing_sample(
    tmp_path, pipeline, ray_executor
):
    killed: list[int] = []
    killer = threading.Thread(target=kill_one_worker_once_rendering, args=(killed,))
    killer.start()
    cycle = sampled_cycle(tmp_path, pipeline, ray_executor, steps=20)
    killer.join()
    assert killed, "no Ray worker was seen rendering"
    release = cycle.store.release("hub:team/tiny@1")
    assert release.state == ReleaseState.sampled
    (sample_set,) = cycle.store.rows(SampleSet)
    folder = Path(sample_set.folder)
    names = sorted(p.name for p in folder.glob("*.png"))
    assert (
        names
        == [f"{i:05d}-s{7 + i}.png" for i in range(PROMPTS)]
        == [row.split(",")[0] for row in (folder / "manifest.csv").read_text().splitlines()[1:]]
    )
    (status,) = collect_status(cycle.settings, aliases=False)["releases"]
    (sampling,) = status["steps"]
    assert sampling["step"] == "sample" and sampling["ok"] is True
    assert (sampling["executor"], sampling["workers"]) == ("ray", 2)


def test_an_unknown_executor_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown executor 'dask'; choose one of local, ray"):
        create_executor("dask")


def test_the_executor_is_chosen_in_settings_or_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ELIQ_EXECUTOR__KIND", "ray")
    monkeypatch.setenv("ELIQ_EXECUTOR__WORKERS", "3")
    settings = fast_settings(tmp_path, tmp_path / "registry")
    assert (settings.executor.kind, settings.executor.workers) == ("ray", 3)
    cycle = Cycle(settings)
    assert (cycle.executor.name, cycle.executor.workers) == ("ray", 3)
