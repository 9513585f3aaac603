"""Critic throughput: images scored per second, peak memory, training step time.

    python bench/critic_speed.py [--checkpoint CKPT] [--device auto] [--images 64]

Prints a Markdown table to paste. Scoring runs end to end from decoded 512x512 tensors
(views, backbones, fusion, queries); the "backbone only" rows run just the pre-trained
vision backbone on the same views, the floor the critic should approach. Peak memory is
the process's resident-set high-water mark (reset before each row) on the CPU, and
``torch.cuda.max_memory_allocated`` on a GPU.
"""

from __future__ import annotations

import argparse
import platform
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
from eliq.train.data import FeatureStore, load_pairs
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
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    critic = (
        Critic.from_pretrained(args.checkpoint, args.device)
        if args.checkpoint
        else Critic.from_config(CriticConfig(), args.device)
    )
    device = critic.device
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
    rows = []
    for batch in (1, 8, 32):
        critic.score(images[:batch], prompts[:batch], batch)  # warm-up
        reset_peak(device)
        seconds = timed(lambda b=batch: critic.score(images, prompts, b), device)
        rows.append((f"critic.score, batch {batch}", args.images / seconds, peak_mib(device)))
        views = (
            torch.stack(
                [
                    make_views(i, critic.config.view_size, critic.config.crops)
                    for i in images[:batch]
                ]
            )
            .flatten(0, 1)
            .to(device)
        )
        with torch.inference_mode():
            critic.model.vision(views)
            reset_peak(device)
            per_batch = timed(lambda v=views: critic.model.vision(v), device)
        rows.append((f"vision backbone only, batch {batch}", batch / per_batch, peak_mib(device)))

    positives = write_demo_positives(Path("data/bench-pairs/positives"))
    pair_set = PairFactory(PairSettings(per_positive=8)).build(
        read_positives(positives), Path("data/bench-pairs/pairs"), progress=False
    )
    pairs = load_pairs([pair_set.root], "bench").iloc[:32]
    store = FeatureStore(critic.model, device)
    critic.model.train()
    store.precompute(list(pairs["positive"]) + list(pairs["negative"]), progress=False)

    def step() -> None:
        loss, _ = _batch_loss(critic, store, pairs, LossWeights())
        loss.backward()

    step()
    reset_peak(device)
    seconds = timed(step, device)
    frozen = "cached vision features" if critic.model.vision_is_frozen else "live vision (LoRA)"
    rows.append((f"training step ({frozen}), per pair", len(pairs) / seconds, peak_mib(device)))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(
        f"device: {device} ({name}), torch threads {torch.get_num_threads()}, "
        f"{args.images} images of 512x512, {1 + critic.config.crops} views each\n"
    )
    print("| what | per second | peak memory (MiB) |\n|---|---|---|")
    for what, rate, memory in rows:
        unit = "pairs" if "training" in what else "images"
        print(f"| {what} | {rate:.1f} {unit} | {memory:.0f} |")


if __name__ == "__main__":
    main()
