"""Demo positives from photographs that ship inside installed packages (no download).

scikit-image bundles a few real photographs (see skimage/data/README.txt for their sources
and licences); each gets a hand-written prompt that describes it, so the whole pipeline
can be exercised on a fresh machine with no data of its own.
"""

from __future__ import annotations

import csv
import shutil
from importlib import resources
from pathlib import Path

from PIL import Image

DEMO_PHOTOS: dict[str, str] = {
    "astronaut.png": "a smiling astronaut in a white spacesuit in front of an american flag",
    "chelsea.png": "a tabby cat looking to the side, close-up photo",
    "coffee.png": "a cup of coffee on a white saucer with a silver spoon",
    "rocket.jpg": "a white rocket on a launch pad under a blue sky",
    "motorcycle_left.png": "a red motorcycle parked in a room next to a wall",
    "hubble_deep_field.jpg": "hundreds of colorful galaxies in the black sky of deep space",
}


def write_demo_positives(folder: Path) -> Path:
    """Copy the demo photos into ``folder`` and write ``manifest.csv`` (image, prompt)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = resources.files("skimage") / "data"
    for name in DEMO_PHOTOS:
        with resources.as_file(source / name) as photo:
            shutil.copyfile(photo, folder / name)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "prompt"])
        writer.writerows(DEMO_PHOTOS.items())
    return manifest


def write_demo_crops(folder: Path) -> Path:
    """Four corner crops (70% of each side) of every demo photo as positives, with the
    photo's prompt: 24 positives, enough for a held-out part that compares two critics."""
    photos = folder / "photos"
    write_demo_positives(photos)
    rows = []
    for name, prompt in DEMO_PHOTOS.items():
        with Image.open(photos / name) as opened:
            photo = opened.convert("RGB")
        width, height = photo.size
        w, h = int(width * 0.7), int(height * 0.7)
        corners = [(0, 0), (width - w, 0), (0, height - h), (width - w, height - h)]
        for i, (x, y) in enumerate(corners):
            crop = f"{Path(name).stem}-{i}.png"
            photo.crop((x, y, x + w, y + h)).save(folder / crop)
            rows.append((crop, prompt))
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "prompt"])
        writer.writerows(rows)
    return manifest
