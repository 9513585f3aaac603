"""Training data: pairs from pair sets, batched by ladder, with cached vision features.

Which positives of a pair set are held out is chosen by a hash of each positive, a seed and a
fraction. :func:`record_held_out` writes that choice beside the pair set (``held_out.json``)
once; from then on every split of that pair set follows the record, whatever fraction and
seed it is given, so a forgetting test run releases later measures the very positives the
retune left out, even after the settings changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

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
