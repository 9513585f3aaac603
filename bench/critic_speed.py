"""Critic throughput: images scored per second, peak memory, training step time.

    python bench/critic_speed.py [--checkpoint CKPT | --critic-config JSON] [--device auto]
        [--images 64]

``--critic-config`` builds an untrained critic from a config file (any backbone family,
e.g. ``{"vision_backbone": "<VLM folder or hub id>", "text_backbone": "joint"}``); without
either, the default config.

Prints a Markdown table to paste. Scoring runs end to end from decoded 512x512 tensors
(views, backbones, fusion, queries); the "backbone only" rows run just the pre-trained
vision backbone on the same views, as the critic runs it, the floor the critic should
approach. Single runs on a shared machine are noisy, so each rate is the median of
``--repeats`` interleaved runs (critic, backbone, critic, ...) after a warm-up, with their
range. On a CPU the same repeats also score through the exported runtimes that are installed
(``runtime="onnxruntime"``), and the lines before the last give each one's
speed-up over eager torch at batch 32 and the largest score difference from eager torch on
these images. Peak memory is the process's resident-set
high-water mark (reset before each row) on the CPU, and ``torch.cuda.max_memory_allocated``
on a GPU. The last line is the ratio of the critic's time to the backbone's per batch size.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from eliq.config import PairSettings
from eliq.critic import Critic, CriticConfig
from eliq.critic.views import make_views
from eliq.demo import DEMO_PHOTOS, write_demo_positives
from eliq.imageio import load_image
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import read_positives
from eliq.train.data import load_pairs
from eliq.train.settings import LossWeights
from eliq.train.trainer import _batch_loss


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")


def peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", type=Path)
    source.add_argument("--critic-config", type=Path, help="A CriticConfig as JSON.")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="Interleaved runs per row.")
    args = parser.parse_args()
    if args.checkpoint:
        critic = Critic.from_pretrained(args.checkpoint, args.device)
    else:
        config = (
            CriticConfig.model_validate_json(args.critic_config.read_text())
            if args.critic_config
            else CriticConfig()
        )
        critic = Critic.from_config(config, args.device)
    device = critic.device
    exported = {
        runtime: Critic(critic.model, device, runtime)
        for runtime in ("onnxruntime",)
        if device.type == "cpu"
        and critic.model.vision.exportable
        and importlib.util.find_spec(runtime) is not None
    }
    folder = Path("data/bench-photos")
    write_demo_positives(folder)
    photos = [load_image(folder / name) for name in DEMO_PHOTOS]
    images = [
        F.interpolate(
            photos[i % len(photos)][None], size=(512, 512), antialias=True, mode="bilinear"
        )[0]
        for i in range(args.images)
    ]
    prompts = [list(DEMO_PHOTOS.values())[i % len(DEMO_PHOTOS)] for i in range(args.images)]
    rows, ratios = [], []
    for batch in (1, 8, 32):
        views = torch.stack(
            [make_views(i, critic.config.view_size, critic.config.crops) for i in images]
        ).to(device)

        def backbone(v=views, b=batch) -> None:
            with torch.inference_mode():
                for start in range(0, len(v), b):
                    critic.vision_features(v[start : start + b])

        runs = {
            "critic.score": lambda b=batch: critic.score(images, prompts, b),
            "vision backbone only": backbone,
        }
        for runtime, other in exported.items():
            runs[f"critic.score, {runtime}"] = lambda b=batch, c=other: c.score(images, prompts, b)
        for run in runs.values():  # warm-up
            run()
        times: dict[str, list[float]] = {label: [] for label in runs}
        reset_peak(device)
        for _ in range(args.repeats):
            for label, run in runs.items():
                times[label].append(timed(run, device))
        memory = peak_mib(device)
        for label in runs:
            rates = sorted(args.images / t for t in times[label])
            rows.append((f"{label}, batch {batch}", statistics.median(rates), rates, memory))
        median = {label: statistics.median(t) for label, t in times.items()}
        ratios.append(median["critic.score"] / median["vision backbone only"])
        speedups = {r: median["critic.score"] / median[f"critic.score, {r}"] for r in exported}

    eager = critic.score(images, prompts, 32)  # before the training step below trains it
    differences = {
        runtime: max(
            max(abs(a.quality - b.quality), abs(a.alignment - b.alignment))
            for a, b in zip(eager, other.score(images, prompts, 32), strict=True)
        )
        for runtime, other in exported.items()
    }
    positives = write_demo_positives(Path("data/bench-pairs/positives"))
    pair_set = PairFactory(PairSettings(per_positive=8)).build(
        read_positives(positives), Path("data/bench-pairs/pairs"), progress=False
    )
    pairs = load_pairs([pair_set.root], "bench").iloc[:32]
    store = critic.feature_cache()
    critic.model.train()
    store.precompute(list(pairs["positive"]) + list(pairs["negative"]), progress=False)

    def step() -> None:
        loss, _ = _batch_loss(critic, store, pairs, LossWeights())
        loss.backward()

    step()
    reset_peak(device)
    seconds = timed(step, device)
    frozen = "cached vision features" if critic.model.vision_is_frozen else "live vision (LoRA)"
    rate = len(pairs) / seconds
    rows.append((f"training step ({frozen}), per pair", rate, [rate], peak_mib(device)))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    config = critic.config
    print(
        f"critic: {config.vision_backbone} + {config.text_backbone}, "
        f"{sum(p.numel() for p in critic.model.parameters()) / 1e6:.1f} M parameters "
        f"({sum(p.numel() for p in critic.model.parameters() if p.requires_grad) / 1e6:.2f} M "
        "trainable)"
    )
    print(
        f"device: {device} ({name}), torch threads {torch.get_num_threads()}, "
        f"{args.images} images of 512x512, {1 + critic.config.crops} views each, median of "
        f"{args.repeats} interleaved repeats\n"
    )
    print("| what | per second (median) | range | peak memory (MiB) |\n|---|---|---|---|")
    for what, rate, rates, memory in rows:
        unit = "pairs" if "training" in what else "images"
        print(f"| {what} | {rate:.1f} {unit} | {rates[0]:.1f}–{rates[-1]:.1f} | {memory:.0f} |")
    print()
    for runtime in exported:
        print(
            f"{runtime} vs eager torch at batch 32: {speedups[runtime]:.2f}x the images/s, "
            f"largest score difference {differences[runtime]:.1e}"
        )
    print(
        "\ncritic/backbone time ratio: "
        + ", ".join(f"batch {b} {r:.2f}" for b, r in zip((1, 8, 32), ratios, strict=True))
    )


if __name__ == "__main__":
    main()
