"""Training data: pairs from pair sets, batched by ladder, with cached vision features.

Which positives of a pair set are held out is chosen by a hash of each positive, a seed and a
fraction. :func:`record_held_out` writes that choice beside the pair set (``held_out.json``)
once; from then on every split of that pair set follows the record, whatever fraction and
seed it is given, so a forgetting test run releases later measures the very positives the
retune left out, even after the settings changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from eliq.critic.fingerprint import vision_fingerprint
from eliq.critic.model import CriticModel
from eliq.critic.views import global_view, make_views
from eliq.imageio import load_image
from eliq.pairs.pairset import PairSet
from eliq.seeding import derive_seed

AXIS = {"technical": 0, "aesthetic": 0, "alignment": 1}
HELD_OUT_FILE = "held_out.json"
PAIR_COLUMNS = [
    "pair_id",
    "positive_id",
    "positive",
    "negative",
    "positive_prompt",
    "negative_prompt",
    "aspect",
    "family",
    "kind",
    "severity",
]


def load_pairs(roots: Sequence[Path], source: str) -> pd.DataFrame:
    """The pairs of several pair sets, with absolute image paths and a group per ladder."""
    frames = []
    for root in roots:
        pair_set = PairSet(root)
        frame = pair_set.table(PAIR_COLUMNS).to_pandas()
        frame["positive"] = [str(pair_set.path(p)) for p in frame["positive"]]
        frame["negative"] = [str(pair_set.path(p)) for p in frame["negative"]]
        frame["group"] = str(root) + "|" + frame["positive_id"] + "|" + frame["family"]
        recorded = _recorded_held_out(root)
        frame["held_out"] = (
            None if recorded is None else frame["positive_id"].isin(recorded).astype(object)
        )
        frames.append(frame)
    pairs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PAIR_COLUMNS)
    pairs["source"] = source
    pairs["axis"] = pairs["aspect"].map(AXIS).astype("int64")
    return pairs


def split_held_out(
    pairs: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out whole positives (all their pairs): as recorded for pair sets that carry a
    record (``held_out`` column of :func:`load_pairs`), else chosen by a hash of the
    positive; with two or more positives and ``fraction`` > 0, at least one is held out and
    at least one is not."""
    if pairs.empty:
        return pairs, pairs.iloc[:0]
    recorded = pairs["held_out"] if "held_out" in pairs else pd.Series(None, index=pairs.index)
    known = recorded.notna().to_numpy()
    held = np.zeros(len(pairs), dtype=bool)
    held[known] = recorded[known].astype(bool).to_numpy()
    held[~known] = _chosen(pairs["positive_id"][~known], fraction, seed)
    return pairs[~held], pairs[held]


def _chosen(positive_ids: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """Which rows' positives the hash of ``seed`` holds out."""
    if fraction <= 0 or positive_ids.empty:
        return np.zeros(len(positive_ids), dtype=bool)
    draws = {p: derive_seed(seed, "held-out", p) % 10_000 for p in positive_ids.unique()}
    chosen = {p for p, draw in draws.items() if draw < fraction * 10_000}
    if not chosen and len(draws) > 1:
        chosen = {min(draws, key=draws.get)}
    if len(chosen) == len(draws) > 1:  # a few positives and a large fraction: keep one to train
        chosen.remove(max(draws, key=draws.get))
    return positive_ids.isin(chosen).to_numpy()


def record_held_out(root: Path, fraction: float, seed: int) -> set[str]:
    """The pair set's held-out positives, chosen by ``fraction`` and ``seed`` and written to
    ``held_out.json`` the first time; later calls return the record as it is."""
    recorded = _recorded_held_out(root)
    if recorded is not None:
        return recorded
    pairs = load_pairs([root], "record")
    _, held = split_held_out(pairs, fraction, seed)
    chosen = sorted(set(held["positive_id"]))
    path = Path(root) / HELD_OUT_FILE
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"fraction": fraction, "seed": seed, "positives": chosen}))
    partial.replace(path)
    return set(chosen)


def _recorded_held_out(root: Path) -> set[str] | None:
    path = Path(root) / HELD_OUT_FILE
    return set(json.loads(path.read_text())["positives"]) if path.is_file() else None


def ladder_batches(
    pairs: pd.DataFrame,
    batch_pairs: int,
    rng: np.random.Generator,
    replay: pd.DataFrame | None = None,
    replay_fraction: float = 0.0,
) -> Iterator[pd.DataFrame]:
    """Endless batches of whole ladders (all severities of one positive and family stay
    together, so the severity term has pairs to rank). With ``replay``, about
    ``replay_fraction`` of each batch comes from earlier pair sets."""
    sources = [pairs]
    weights = [1.0]
    if replay is not None and len(replay) and replay_fraction > 0:
        sources.append(replay)
        weights = [1.0 - replay_fraction, replay_fraction]
    ladders = [_shuffled_ladders(frame, rng) for frame in sources]
    while True:
        rows: list[pd.DataFrame] = []
        while sum(len(r) for r in rows) < batch_pairs:
            rows.append(next(ladders[int(rng.choice(len(sources), p=weights))]))
        yield pd.concat(rows, ignore_index=True)


def _shuffled_ladders(frame: pd.DataFrame, rng: np.random.Generator) -> Iterator[pd.DataFrame]:
    """The ladders of ``frame`` in a fresh random order each epoch, forever."""
    groups = list(frame.groupby("group").indices.values())
    while True:
        for index in rng.permutation(len(groups)):
            yield frame.iloc[groups[index]]


class FeatureStore:
    """Vision features by image path: computed once and kept while the vision backbone is
    frozen (its output cannot change), computed live with gradients otherwise.

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
