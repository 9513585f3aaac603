"""Pairs built per second on 512x512 inputs, per negative family and end to end.

    python bench/pairs.py [--batch-size 16] [--positives 64] [--device auto]

Prints a Markdown table to paste. The degradation rows time the batched tensor op alone
(on the chosen device); the end-to-end row includes decoding, planning, PNG encoding and
the Parquet manifest, as `eliq pairs build` runs it.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from eliq.config import PairSettings
from eliq.demo import DEMO_PHOTOS, write_demo_positives
from eliq.devices import resolve_device
from eliq.imageio import load_image, save_image
from eliq.pairs import available_families
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import Positive
from eliq.seeding import torch_generator

SIZE = 512


def photo_batch(folder: Path, count: int) -> list[Path]:
    """``count`` 512x512 photos, cycling over the bundled demo photos."""
    write_demo_positives(folder)
    paths = []
    for i in range(count):
        name = list(DEMO_PHOTOS)[i % len(DEMO_PHOTOS)]
        image = load_image(folder / name)
        square = F.interpolate(image[None], size=(SIZE, SIZE), mode="bilinear", antialias=True)
        path = folder / f"square-{i:04d}.png"
        save_image(square[0].flip(-1) if i % 2 else square[0], path)
        paths.append(path)
    return paths


def time_families(images: torch.Tensor, device: torch.device) -> list[tuple[str, float]]:
    rows = []
    batch = images.to(device)
    severity = (torch.arange(len(batch)) % 5 + 1).to(device)
    for name, family in available_families().items():
        if family.degrade is None:
            continue
        generators = [torch_generator(i) for i in range(len(batch))]
        family.degrade(batch[:2], severity[:2], generators[:2])  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        family.degrade(batch, severity, generators)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rows.append((name, len(batch) / (time.perf_counter() - start)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--positives", type=int, default=64)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = photo_batch(folder / "photos", args.positives)
        images = torch.stack([load_image(p) for p in paths[: args.batch_size]])
        family_rows = time_families(images, device)
        settings = PairSettings(batch_size=args.batch_size, device=str(device))
        factory = PairFactory(settings)
        prompts = list(DEMO_PHOTOS.values())
        positives = [
            Positive(key=p.name, image=p, prompt=prompts[i % len(prompts)])
            for i, p in enumerate(paths)
        ]
        start = time.perf_counter()
        pairs = len(factory.build(positives, folder / "pairs", progress=False))
        elapsed = time.perf_counter() - start
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"device: {device} ({name or platform.machine()}), torch threads: "
        f"{torch.get_num_threads()}, batch size: {args.batch_size}, {SIZE}x{SIZE} inputs\n"
    )
    print("| family (tensor op only) | images/s |\n|---|---|")
    for family, rate in sorted(family_rows, key=lambda r: -r[1]):
        print(f"| {family} | {rate:.1f} |")
    print(
        f"\n| end to end ({args.positives} positives, per_positive="
        f"{settings.per_positive}) | pairs/s |\n|---|---|"
    )
    print(f"| eliq pairs build | {pairs / elapsed:.1f} |")


if __name__ == "__main__":
    main()
