"""The sampling and retune steps on the local executor against Ray with 1 and 2 workers.

    python bench/scale.py [--pipeline DIR] [--prompts 16] [--steps 10] [--size 128]
                          [--shard-prompts 4] [--repeats 3] [--device cpu]
                          [--critic-config FILE] [--train-steps 24] [--skip-sampling]

Renders the bundled prompt suite's first ``--prompts`` prompts through the daemon's own
unit of work (``daemon.tasks.sampling.render_shard``, one shard of ``--shard-prompts`` prompts per
task) and prints images/s per executor: the median of ``--repeats`` runs after a warm-up
run that starts Ray and loads the pipeline in each worker, with the range. ``--pipeline``
is a diffusers folder; by default a tiny randomly initialised Stable Diffusion pipeline
(tests/tiny_diffusers.py) is built, so the numbers say what the executor costs and gains,
not what a real model renders at. The last line is Ray's 2-worker rate over its 1-worker
rate, and whether every executor rendered the same bytes.

The retune is the daemon's own unit of work (``daemon.tasks.retuning.run_retune``) on the demo
photos' 24 corner crops and their pairs, with the retune's default batch and
``--critic-config`` (default: the daemon's default critic), run through each executor's
``data_parallel`` (on Ray: Ray Train, DDP over gloo). Its table gives pairs/s in the
training loop (steps x batch pairs / the loop's seconds, what more workers speed up), the
whole call's seconds (on Ray, with the start of the worker group) and the held-out pair
accuracy, which should agree within noise. Vision features are cached on disk by a warm-up
run, as a daemon's cache holds them after its first cycle.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.executors import Executor, create_executor  # noqa: E402
from daemon.tasks.retuning import RetuneJob, run_retune  # noqa: E402
from daemon.tasks.sampling import SampleShard, render_shard, shard_suite  # noqa: E402
from eliq.config import PairSettings  # noqa: E402
from eliq.critic import CriticConfig  # noqa: E402
from eliq.demo import write_demo_crops  # noqa: E402
from eliq.pairs.factory import PairFactory  # noqa: E402
from eliq.pairs.positives import read_positives  # noqa: E402
from eliq.prompts import load_suite  # noqa: E402
from eliq.train import RETUNE_DEFAULTS  # noqa: E402


def rendered_digest(executor: Executor, shards: list[SampleShard]) -> tuple[float, str]:
    """Seconds to render every shard, and a digest of the pixels in prompt order."""
    start = time.perf_counter()
    results = executor.map(render_shard, shards)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for image in sorted((i for shard in results for i in shard), key=lambda i: i.index):
        digest.update(image.pixels.tobytes())
    return seconds, digest.hexdigest()[:16]


def sampling_rates(executor: Executor, shards: list[SampleShard], repeats: int) -> dict:
    _, digest = rendered_digest(executor, shards)  # warm-up: Ray up, pipelines loaded
    seconds = [rendered_digest(executor, shards)[0] for _ in range(repeats)]
    images = sum(len(shard.prompts) for shard in shards)
    rates = [images / s for s in seconds]
    executor.close()
    return {
        "rate": statistics.median(rates),
        "low": min(rates),
        "high": max(rates),
        "digest": digest,
    }


def retune_rates(
    executor: Executor, pairs: Path, config: CriticConfig | None, steps: int, device: str
) -> dict:
    """One retune through ``executor`` (after a warm-up run that fills the feature cache
    and, on Ray, starts the workers' processes once): pairs/s in the loop and overall."""
    work = Path(tempfile.mkdtemp(prefix="eliq-scale-retune-"))
    settings = RETUNE_DEFAULTS.model_copy(update={"steps": steps, "device": device})
    cache = pairs.parent / "features"
    executor.data_parallel(
        run_retune, RetuneJob(pairs, work / "warm-up", settings, config=config, feature_cache=cache)
    )
    start = time.perf_counter()
    result = executor.data_parallel(
        run_retune, RetuneJob(pairs, work / "critic", settings, config=config, feature_cache=cache)
    )
    seconds = time.perf_counter() - start
    executor.close()
    summary = json.loads((work / "critic" / "training.json").read_text())
    held_out = result["held_out_accuracy"]
    return {
        "loop": steps * settings.batch_pairs / summary["train_seconds"],
        "seconds": seconds,
        "processes": result["processes"],
        "held_out": statistics.mean(held_out.values()) if held_out else float("nan"),
    }


def retune_table(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="eliq-scale-pairs-"))
    positives = read_positives(write_demo_crops(folder / "positives"))
    pairs = PairFactory(PairSettings()).build(positives, folder / "pairs", progress=False)
    config = (
        CriticConfig.model_validate_json(args.critic_config.read_text())
        if args.critic_config
        else None
    )
    rows = {
        (kind, workers): retune_rates(
            create_executor(kind, **({"workers": workers} if kind == "ray" else {})),
            pairs.root,
            config,
            args.train_steps,
            args.device,
        )
        for kind, workers in (("local", 1), ("ray", 1), ("ray", 2))
    }
    print(
        f"\nRetune, {len(pairs)} pairs of {len(positives)} positives (demo crops), "
        f"{args.train_steps} steps of {RETUNE_DEFAULTS.batch_pairs} pairs, "
        f"critic {args.critic_config or 'default'}, {args.device}\n"
    )
    print(
        "| executor | workers | processes | pairs/s (loop) | call s | held-out accuracy |\n"
        "|---|---|---|---|---|---|"
    )
    for (kind, workers), row in rows.items():
        print(
            f"| {kind} | {workers} | {row['processes']} | {row['loop']:.1f} | "
            f"{row['seconds']:.1f} | {row['held_out']:.3f} |"
        )
    speedup = rows[("ray", 2)]["loop"] / rows[("ray", 1)]["loop"]
    print(f"\nray, 2 workers / 1 worker: {speedup:.2f}x the loop's pairs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", type=Path, help="diffusers folder (default: a tiny one)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="denoising steps")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--shard-prompts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--critic-config", type=Path, help="CriticConfig JSON for the retune")
    parser.add_argument("--train-steps", type=int, default=24)
    parser.add_argument("--skip-sampling", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.skip_sampling:
        sampling_table(args)
    retune_table(args)


def sampling_table(args: argparse.Namespace) -> None:
    pipeline = args.pipeline
    if pipeline is None:
        from tests.tiny_diffusers import build_tiny_pipeline

        pipeline = build_tiny_pipeline(Path(tempfile.mkdtemp(prefix="eliq-scale-")) / "tiny")
    options = {
        "device": args.device,
        "default_steps": args.steps,
        "size": [args.size, args.size],
        "batch_size": args.shard_prompts,
    }
    prompts = [record.text for record in load_suite()[: args.prompts]]
    shards = shard_suite("diffusers", str(pipeline), options, prompts, 0, args.shard_prompts)
    rows = {
        ("local", 1): sampling_rates(create_executor("local"), shards, args.repeats),
        ("ray", 1): sampling_rates(create_executor("ray", workers=1), shards, args.repeats),
        ("ray", 2): sampling_rates(create_executor("ray", workers=2), shards, args.repeats),
    }
    print(
        f"Sampling, {args.prompts} prompts of the bundled suite, {args.steps} steps, "
        f"{args.size}x{args.size}, shards of {args.shard_prompts}, one CPU thread per shard, "
        f"{date.today()}, {platform.machine()} CPU x{os.cpu_count()}"
        + ("" if args.pipeline else ", a tiny random pipeline")
        + "\n"
    )
    print("| executor | workers | images/s (median) | range |\n|---|---|---|---|")
    for (kind, workers), row in rows.items():
        print(f"| {kind} | {workers} | {row['rate']:.2f} | {row['low']:.2f}–{row['high']:.2f} |")
    same = len({row["digest"] for row in rows.values()}) == 1
    speedup = rows[("ray", 2)]["rate"] / rows[("ray", 1)]["rate"]
    print(
        f"\nray, 2 workers / 1 worker: {speedup:.2f}x the images/s; "
        f"the same pixels from every executor: {'yes' if same else 'NO'}"
    )


if __name__ == "__main__":
    main()
