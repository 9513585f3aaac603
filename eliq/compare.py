"""Is B better than A? Two sets of scores compared per axis, with a confidence interval.

The sets are typically two generator releases scored by one critic (``eliq score`` writes
them as JSON Lines). When both render the same prompts, as a monitor's releases do (one
prompt suite, fixed seeds), the comparison is paired by prompt: each shared prompt's mean
score under B minus its mean under A, resampled over prompts. Pairing removes the
variation between prompts, which is most of the variation of a score, so far fewer images
give the same certainty. Sets with no prompt in common are compared as independent
samples. Scores are comparable only under one critic version; comparing sets scored by
two critics measures the critics, not the generators.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eliq.csv_cells import unguard
from eliq.intervals import CONFIDENCE, Interval, mean_difference, paired_mean_difference
from eliq.prompts.record import prompt_or_none

AXES = ("quality", "alignment")
MIN_PAIRED_PROMPTS = 2


@dataclass(frozen=True)
class AxisComparison:
    """B minus A on one axis (the difference is ``interval.estimate``)."""

    interval: Interval
    n_a: int
    n_b: int
    paired_prompts: int
    """Prompts both sets scored, when the comparison is paired by prompt; 0 when not."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: a difference too large for a float (scores near ±1e308) is null, as
        JSON has no Infinity or NaN."""
        i = self.interval
        return {
            "difference": _finite(i.estimate),
            "low": _finite(i.low),
            "high": _finite(i.high),
            "confidence": i.confidence,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "paired_prompts": self.paired_prompts,
        }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def compare_scores(
    a: pd.DataFrame, b: pd.DataFrame, confidence: float = CONFIDENCE, seed: int = 0
) -> dict[str, AxisComparison | None]:
    """Per axis, B's scores minus A's (frames with ``quality``, ``alignment`` and optionally
    ``prompt`` columns); None for an axis with fewer than two scores on a side."""
    return {axis: compare_axis(a, b, axis, confidence, seed) for axis in AXES}


def compare_axis(
    a: pd.DataFrame, b: pd.DataFrame, axis: str, confidence: float = CONFIDENCE, seed: int = 0
) -> AxisComparison | None:
    a, b = _scored(a, axis), _scored(b, axis)
    if len(a) < 2 or len(b) < 2:
        return None
    if "prompt" in a and "prompt" in b:
        per_prompt = pd.concat(
            [
                _prompted(a).groupby("prompt")[axis].mean(),
                _prompted(b).groupby("prompt")[axis].mean(),
            ],
            axis=1,
            keys=["a", "b"],
            join="inner",
        )
        if len(per_prompt) >= MIN_PAIRED_PROMPTS:
            interval = paired_mean_difference(
                per_prompt["a"].to_numpy(), per_prompt["b"].to_numpy(), confidence, seed
            )
            return AxisComparison(interval, len(a), len(b), len(per_prompt))
    interval = mean_difference(a[axis].to_numpy(), b[axis].to_numpy(), confidence, seed)
    return AxisComparison(interval, len(a), len(b), 0)


def read_score_file(path: Path) -> pd.DataFrame:
    """The scored rows of a file as ``eliq score`` writes it: JSON Lines, or CSV when the
    name ends in ``.csv`` (rows that carry an ``error`` are left out; a line that is not
    a JSON object is a clear error)."""
    if Path(path).suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={"prompt": "string", "error": "string"})
        if "quality" not in frame:
            raise ValueError(f"{path}: no 'quality' column")
        rows = frame[frame["error"].isna()] if "error" in frame else frame
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        records = [{k: unguard(v) for k, v in record.items()} for record in records]
    else:
        records = _json_lines(Path(path))
    records = [r for r in records if r.get("error") is None]
    frame = pd.DataFrame(
        records, columns=sorted({"prompt", *AXES, *(k for r in records for k in r)})
    )
    for axis in AXES:
        frame[axis] = pd.to_numeric(frame[axis], errors="coerce")
    if frame["quality"].notna().sum() == 0:
        raise ValueError(f"{path}: no scored images (a 'quality' value on some line)")
    return frame


def same_critic_version(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Refuse to compare sets scored by different critic versions (raw scores are
    comparable only under one); files written before records carried it pass."""
    versions = [
        set(frame["critic_version"].dropna()) if "critic_version" in frame else set()
        for frame in (a, b)
    ]
    if (all(versions) and versions[0] != versions[1]) or any(len(v) > 1 for v in versions):
        raise ValueError(
            f"the files were scored by different critic versions ({sorted(versions[0])} and "
            f"{sorted(versions[1])}): score both with one critic"
        )


def _json_lines(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: a score line must be a JSON object")
            rows.append(record)
    return rows


def describe(comparison: dict[str, AxisComparison | None], a: str = "A", b: str = "B") -> str:
    """One line for people: ``B vs A: quality +0.21 [+0.12, +0.30], alignment …``."""
    parts = [
        f"{axis} {c.interval}" if c is not None else f"{axis} not comparable"
        for axis, c in comparison.items()
    ]
    return f"{b} vs {a}: " + ", ".join(parts)


def _scored(frame: pd.DataFrame, axis: str) -> pd.DataFrame:
    if axis not in frame:
        return frame.iloc[:0]
    keep = np.isfinite(pd.to_numeric(frame[axis], errors="coerce").to_numpy(dtype=float))
    return frame[keep]


def _prompted(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with a prompt (a folder scored without prompts pairs nothing)."""
    prompts = frame["prompt"]
    return frame[prompts.map(lambda p: isinstance(p, str) and prompt_or_none(p) is not None)]
