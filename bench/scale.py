"""The sampling step on the local executor against Ray with 1 and 2 workers.

    python bench/scale.py [--pipeline DIR] [--prompts 16] [--steps 10] [--size 128]
                          [--shard-prompts 4] [--repeats 3] [--device cpu]

Renders the bundled prompt suite's first ``--prompts`` prompts through the daemon's own
unit of work (``daemon.sampling.render_shard``, one shard of ``--shard-prompts`` prompts per
task) and prints images/s per executor: the median of ``--repeats`` runs after a warm-up
run that starts Ray and loads the pipeline in each worker, with the range. ``--pipeline``
is a diffusers folder; by default a tiny randomly initialised Stable Diffusion pipeline
(tests/tiny_diffusers.py) is built, so the numbers say what the executor costs and gains,
not what a real model renders at. The last line is Ray's 2-worker rate over its 1-worker
rate, and whether every executor rendered the same bytes.

The retune on Ray (Ray Train, DDP) is not built yet; this prints sampling only.
"""

from __future__ import annotations

import argparse
import hashlib
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
from daemon.sampling import SampleShard, render_shard, shard_suite  # noqa: E402
from eliq.prompts import load_suite  # noqa: E402


def rendered_digest(executor: Executor, shards: list[SampleShard]) -> tuple[float, str]:
    """Seconds to render every shard, and a digest of the pixels in prompt order."""
    start = time.perf_counter()
    results = executor.map(render_shard, shards)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for image in sorted((i for shard in results for i in shard), key=lambda i: i.index):
        digest.update(image.pixels.tobytes())
    return seconds, digest.hexdigest()[:16]


def measure(executor: Executor, shards: list[SampleShard], repeats: int) -> dict:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", type=Path, help="diffusers folder (default: a tiny one)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="denoising steps")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--shard-prompts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
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
        ("local", 1): measure(create_executor("local"), shards, args.repeats),
        ("ray", 1): measure(create_executor("ray", workers=1), shards, args.repeats),
        ("ray", 2): measure(create_executor("ray", workers=2), shards, args.repeats),
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
