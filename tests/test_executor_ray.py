"""The executor's work on a real local Ray instance (2 CPU workers) against the local
executor: sampling gives the same files, byte for byte, and a worker killed mid-step loses
nothing; a retune on 2 DDP workers (Ray Train, gloo) ranks held-out pairs as well as the
single-process retune, within sampling noise."""

import json
import os
import shutil
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from adapters.executors import create_executor
from adapters.executors.local import LocalExecutor
from daemon.composition import build_cycle
from daemon.cycle.discovery import Cycle
from daemon.serve.status import collect_status
from daemon.settings import SamplingSettings
from daemon.state.tables import PairSetRecord, ReleaseRecord, ReleaseState, SampleSet
from daemon.tasks.retuning import RetuneJob, run_retune
from daemon.tasks.score_shards import score_shard, shard_images
from eliq.config import PairSettings
from eliq.critic import Critic, CriticConfig, LoraSettings
from eliq.demo import write_demo_crops
from eliq.evaluation import held_out_accuracy
from eliq.pairs.factory import PairFactory
from eliq.pairs.pairset import PairSet
from eliq.pairs.positives import read_positives
from eliq.testing import build_tiny_vlm
from eliq.train import TrainSettings
from tests.daemon_helpers import fast_settings
from tests.tiny_diffusers import build_tiny_pipeline

ray = pytest.importorskip("ray")
PROMPTS = 6


@pytest.fixture(scope="module")
def ray_executor(tmp_path_factory):
    storage = tmp_path_factory.mktemp("ray-train")
    executor = create_executor("ray", workers=2, storage_path=str(storage))
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
    cycle = build_cycle(settings, executor=executor)
    release = cycle.ports.store.add(rendering_release(pipeline, steps))
    assert cycle.pipeline.advance(release), cycle.ports.store.release(release.id).last_error
    return cycle


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def samples_and_pairs(tmp_path: Path, pipeline: Path, executor) -> tuple[dict, str]:
    """The sampled files and the pair set's digest of one release, in a fresh data
    directory at ``tmp_path`` (pair provenance names the samples by absolute path)."""
    shutil.rmtree(tmp_path, ignore_errors=True)
    cycle = sampled_cycle(tmp_path, pipeline, executor)
    release = cycle.ports.store.release("hub:team/tiny@1")
    samples = files(cycle.ports.workspace(release).samples)
    # build pairs
    assert cycle.pipeline.advance(release), cycle.ports.store.release(release.id).last_error
    (pair_set,) = cycle.ports.store.rows(PairSetRecord)
    assert pair_set.pairs > 0
    cycle.ports.store.engine.dispose()
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
    release = cycle.ports.store.release("hub:team/tiny@1")
    assert release.state == ReleaseState.sampled
    (sample_set,) = cycle.ports.store.rows(SampleSet)
    folder = Path(sample_set.folder)
    names = sorted(p.name for p in folder.glob("*.png"))
    assert (
        names
        == [f"{i:05d}-s{7 + i}.png" for i in range(PROMPTS)]
        == [row.split(",")[0] for row in (folder / "manifest.csv").read_text().splitlines()[1:]]
    )
    (status,) = collect_status(cycle.ports.settings, aliases=False)["releases"]
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
    executor = build_cycle(settings).ports.executor
    assert (executor.name, executor.workers) == ("ray", 3)
    assert executor.storage_path == str((settings.data_dir / "ray").resolve())  # not ~


FROZEN = CriticConfig(
    crops=1, dim=32, decoder_layers=1, queries_per_axis=2, vision_lora=LoraSettings(enabled=False)
)


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """The demo photos' 24 corner crops, their pairs and a feature cache the tests share."""
    root = tmp_path_factory.mktemp("crops")
    positives = read_positives(write_demo_crops(root / "positives"))
    PairFactory(PairSettings(per_positive=6)).build(positives, root / "pairs", progress=False)
    return root


def test_a_retune_on_two_ddp_workers_ranks_held_out_pairs_as_one_process_does(
    tmp_path, crops, ray_executor
):
    pairs = PairSet(crops / "pairs")
    settings = TrainSettings(steps=24, batch_pairs=16, held_out_fraction=0.3, device="cpu")
    accuracy, processes = {}, {}
    for executor in (LocalExecutor(), ray_executor):
        out = tmp_path / f"critic-{executor.name}"
        job = RetuneJob(pairs.root, out, settings, config=FROZEN, feature_cache=crops / "features")
        result = executor.data_parallel(run_retune, job)
        assert result.steps == settings.steps and result.skipped_steps == 0
        processes[executor.name] = result.processes
        critic = Critic.from_pretrained(out, device="cpu")
        accuracy[executor.name] = held_out_accuracy(
            critic, {"pairs": pairs.root}, settings.held_out_fraction, settings.seed
        )
    assert processes == {"local": 1, "ray": 2}
    assert any(Path(ray_executor.storage_path).iterdir())  # Ray Train's run folder, not ~
    single, ddp = accuracy["local"], accuracy["ray"]
    assert single.pairs == ddp.pairs >= 30
    p = (single.mean + ddp.mean) / 2
    noise = 3 * (2 * p * (1 - p) / single.pairs) ** 0.5  # 3 sigma of two proportions' difference
    assert abs(single.mean - ddp.mean) <= max(noise, 1 / single.pairs), (single.mean, ddp.mean)


def test_a_ddp_retune_stops_when_asked_and_resumes_a_saved_state(tmp_path, crops, ray_executor):
    """A stop reaches every Ray Train worker (they stop together, saving nothing past the
    saved state), and 2 DDP workers resume a state one process saved, to the last step."""
    settings = TrainSettings(steps=12, batch_pairs=8, checkpoint_every=1, device="cpu")
    out = tmp_path / "critic"
    job = RetuneJob(crops / "pairs", out, settings, config=FROZEN, feature_cache=crops / "features")
    saved = out / "state" / "state.json"

    def five_steps_saved() -> bool:  # the state is saved after every step
        return saved.is_file() and json.loads(saved.read_text())["step"] >= 5

    assert LocalExecutor().data_parallel(run_retune, job, five_steps_saved).stopped
    assert json.loads(saved.read_text())["step"] == 5

    assert ray_executor.data_parallel(run_retune, job, lambda: True).stopped
    assert json.loads(saved.read_text())["step"] == 5 and not (out / "config.json").exists()

    finished = ray_executor.data_parallel(run_retune, job)
    assert finished.steps == settings.steps and finished.processes == 2
    history = json.loads(saved.read_text())["history"]
    assert [row["step"] for row in history] == list(range(settings.steps))
    assert (out / "config.json").is_file()


def test_a_vlm_critic_retunes_on_two_ddp_workers(tmp_path, crops, ray_executor):
    """The paper's backbone on the Ray Train path: a tiny multimodal LLM, LoRA on its
    language model, retuned data-parallel; the saved critic loads and scores."""
    folder = build_tiny_vlm(tmp_path / "vlm", "idefics3")
    config = CriticConfig(
        vision_backbone=str(folder),
        text_backbone="joint",
        crops=1,
        dim=32,
        decoder_layers=1,
        vision_lora=LoraSettings(enabled=False),
    )
    settings = TrainSettings(steps=2, batch_pairs=4, held_out_fraction=0.0, device="cpu")
    out = tmp_path / "critic"
    job = RetuneJob(crops / "pairs", out, settings, config=config)
    result = ray_executor.data_parallel(run_retune, job)
    assert result.steps == settings.steps and result.processes == 2
    critic = Critic.from_pretrained(out, device="cpu")
    assert critic.reads_images
    photo = read_positives(crops / "positives" / "manifest.csv")[0]
    (score,) = critic.score([photo.image], [photo.prompt])
    assert score.alignment is not None


def test_the_watch_scores_on_ray_as_on_the_local_executor(tmp_path, crops, ray_executor):
    """The champion's scoring, sharded into Ray tasks, gives the local executor's scores
    (to float rounding: a worker runs on its own thread count)."""
    photos = read_positives(crops / "positives" / "manifest.csv")
    frame = pd.DataFrame(
        {"image": [str(p.image) for p in photos], "prompt": [p.prompt for p in photos]}
    )
    frame.loc[3, "prompt"] = None  # no prompt: no alignment score
    shards = shard_images(Path("reference"), "cpu", frame, 1, tmp_path / "features")
    assert len(shards) == 2  # 24 images in batches of 16
    local = [row for shard in LocalExecutor().map(score_shard, shards) for row in shard]
    on_ray = [row for shard in ray_executor.map(score_shard, shards) for row in shard]
    assert len(local) == len(on_ray) == len(frame)
    assert local[3][1] is None and on_ray[3][1] is None
    assert np.allclose(
        [(q, a if a is not None else 0.0) for q, a in on_ray],
        [(q, a if a is not None else 0.0) for q, a in local],
        atol=1e-5,
    )
