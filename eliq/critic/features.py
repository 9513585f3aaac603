"""A critic's vision features of image files, kept in memory and, with a folder, on disk.

Scoring the same files again (a pair set's positives beside each of their negatives, a
release history re-scored by each new champion, the folds of an experiment) then costs
only the critic's heads: the backbone sees each image once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from eliq.critic.fingerprint import vision_fingerprint
from eliq.critic.model import CriticModel
from eliq.critic.views import global_view, make_views
from eliq.imageio import load_image


class FeatureCache:
    """Vision features by image path: computed once and kept while the vision backbone is
    frozen (its output cannot change), computed live with gradients otherwise. Made by
    :meth:`Critic.feature_cache <eliq.critic.critic.Critic.feature_cache>` and passed to
    :meth:`Critic.score <eliq.critic.critic.Critic.score>`; training reads it too.

    With ``cache_dir`` the features also persist on disk, keyed by the image file's bytes
    and a fingerprint of the vision side (backbone weights, LoRA included, and view
    settings), so runs that share images (the folds of an evaluation protocol, reruns of a
    recipe) compute each image's features once."""

    def __init__(
        self,
        model: CriticModel,
        device: torch.device,
        batch_size: int = 16,
        cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.cache: dict[str, list[torch.Tensor]] = {}
        self.disk = Path(cache_dir) / vision_fingerprint(model) if cache_dir else None

    def _disk_path(self, image: str) -> Path:
        digest = hashlib.sha256(Path(image).read_bytes()).hexdigest()
        return self.disk / digest[:2] / f"{digest}.safetensors"

    def _read_disk(self, paths: Sequence[str]) -> dict[str, Path]:
        """Load what the disk holds of ``paths``; where each of the others will be kept."""
        places = {}
        for path in paths:
            try:
                stored = self._disk_path(path)
            except OSError:
                continue  # unreadable here; loading the image reports why
            if stored.is_file():
                tensors = load_file(stored)
                self.cache[path] = [tensors[str(i)] for i in range(len(tensors))]
            else:
                places[path] = stored
        return places

    @staticmethod
    def _write_disk(stored: Path, levels: list[torch.Tensor]) -> None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        partial = stored.with_name(f"{stored.name}.{os.getpid()}.tmp")
        save_file({str(i): level for i, level in enumerate(levels)}, partial)
        partial.replace(stored)

    def _views(self, paths: Sequence[str]) -> torch.Tensor:
        config = self.model.config
        with ThreadPoolExecutor(4) as pool:
            images = list(pool.map(load_image, paths))
        views = [make_views(i.to(self.device), config.view_size, config.crops) for i in images]
        return torch.stack(views)

    def precompute(
        self,
        paths: Sequence[str],
        progress: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Compute and keep the features of ``paths`` not cached yet; the next batch's
        images are decoded while the current one runs through the backbone. Raises
        :class:`InterruptedError` as soon as ``stop()`` is true."""
        if not self.model.vision_is_frozen:
            return
        missing = sorted(set(paths) - set(self.cache))
        places: dict[str, Path] = {}
        if self.disk is not None and missing:
            places = self._read_disk(missing)
            missing = [p for p in missing if p not in self.cache]
        chunks = [missing[i : i + self.batch_size] for i in range(0, len(missing), self.batch_size)]
        if not chunks:
            return
        with ThreadPoolExecutor(1) as loader:
            upcoming = loader.submit(self._views, chunks[0])
            for index, chunk in enumerate(
                tqdm(chunks, desc="vision features", unit="batch", disable=not progress)
            ):
                if stop is not None and stop():
                    raise InterruptedError("feature extraction stopped")
                views = upcoming.result()
                if index + 1 < len(chunks):
                    upcoming = loader.submit(self._views, chunks[index + 1])
                with torch.inference_mode():
                    levels = self.model.vision_features(views.to(self.device))
                for i, path in enumerate(chunk):
                    self.cache[path] = [level[i].cpu().clone() for level in levels]
                    if path in places:
                        self._write_disk(places[path], self.cache[path])

    def global_views(self, paths: Sequence[str]) -> torch.Tensor | None:
        """``(len(paths), 3, S, S)`` the images' global views on the device, which a joint
        backbone reads with the prompts; None for a critic whose text side does not."""
        if not self.model.reads_images:
            return None
        with ThreadPoolExecutor(4) as pool:
            images = list(pool.map(load_image, paths))
        size = self.model.config.view_size
        return torch.stack([global_view(image.to(self.device), size) for image in images])

    def features(self, paths: Sequence[str]) -> list[torch.Tensor]:
        """Levels ``(len(paths), V, d)`` on the device."""
        if not self.model.vision_is_frozen:
            return self.model.vision_features(self._views(paths).to(self.device))
        self.precompute(paths, progress=False)
        return [
            torch.stack([self.cache[p][level] for p in paths]).to(self.device)
            for level in range(len(self.cache[paths[0]]))
        ]
