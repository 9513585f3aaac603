"""A release that already holds its images: the local registry's outputs releases.

``sample()`` yields the stored ``(prompt, seed, image)`` rows, optionally only those whose
prompt is among ``prompts``. An unreadable image is logged and skipped, never fatal: one bad
file must not stop a release from being scored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from eliq.imageio import ImageLoadError, load_image, to_pil
from eliq.pairs.positives import ManifestColumns, read_positives, split_manifest

log = logging.getLogger(__name__)


class OutputsGenerator:
    renders = False  # yields what the release holds; the daemon passes it no prompts

    def __init__(
        self,
        ref: str | Path,
        manifest: str | Path,
        split_column: str | None = None,
        value: str | None = None,
        image_column: str = "image",
        prompt_column: str = "prompt",
        seed_column: str = "seed",
    ) -> None:
        manifest = Path(manifest)
        columns = ManifestColumns(image=image_column, prompt=prompt_column, seed=seed_column)
        # a release's manifest may name only files inside the release's own folder
        self.positives = read_positives(manifest, Path(ref), columns, confine=True)
        if split_column is not None:
            keep = set(split_manifest(manifest, image_column, split_column).get(value, []))
            self.positives = [p for p in self.positives if p.key in keep]

    def sample(
        self,
        prompts: Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
        **overrides: Any,
    ) -> Iterator[tuple[str | None, int | None, Image.Image]]:
        if overrides:
            raise TypeError(f"stored outputs cannot be re-rendered with {sorted(overrides)}")
        wanted = set(prompts) if prompts is not None else None
        for positive in self.positives:
            if wanted is not None and positive.prompt not in wanted:
                continue
            try:
                image = to_pil(load_image(positive.image))
            except ImageLoadError as error:
                log.error("skipping %s: %s", positive.image, error)
                continue
            yield positive.prompt, positive.seed, image
