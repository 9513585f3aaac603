"""Folders of human-scored images: what ``eliq eval dataset`` reads.

A scored set is a folder with the images and a ``scores.csv`` whose rows name an image
(``name``), optionally its prompt (``prompt``), and its human score. The two shared sets are
presets: ``agiqa3k`` (generated images from seven generator groups, with prompts, quality
and alignment scores) and ``clive-part`` (camera photos, quality only). Any other folder
works when its columns say which score is which: the quality column is ``mos`` or
``mos_quality`` when present, else the only numeric column, unless named; the alignment
column is ``mos_align`` or ``mos_alignment`` when present, unless named.

Human scores are read to evaluate a critic and nowhere else (see :mod:`eliq.evaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

SCORES_FILE = "scores.csv"
QUALITY_COLUMNS = ("mos", "mos_quality")
ALIGNMENT_COLUMNS = ("mos_align", "mos_alignment")
GROUP_COLUMNS = ("generator", "group")


@dataclass(frozen=True)
class ScoredSet:
    """Where a scored set lives and which of its columns mean what."""

    root: Path
    quality: str | None = None
    """The human quality score's column (None: found from the file, see the module)."""
    alignment: str | None = None
    prompt: str | None = "prompt"
    group: str | None = None
    """Rows of one group (a generator, a camera) are also ranked among themselves."""
    name: str = "name"

    @property
    def label(self) -> str:
        return self.root.name


PRESETS = {
    "agiqa3k": ScoredSet(
        Path("agiqa3k"), quality="mos_quality", alignment="mos_align", group="generator"
    ),
    "clive-part": ScoredSet(Path("clive-part"), quality="mos", prompt=None),
}


def shared_root(name: str) -> Path:
    """``../shared/datasets/<name>`` from here, or else beside this source checkout, so a
    preset resolves from any directory of a checkout that sits beside ``shared/``."""
    relative = Path("../shared/datasets") / name
    beside_checkout = Path(__file__).resolve().parents[2] / "shared" / "datasets" / name
    return relative if relative.is_dir() or not beside_checkout.is_dir() else beside_checkout


def resolve(
    name_or_folder: str | Path,
    quality: str | None = None,
    alignment: str | None = None,
    group: str | None = None,
) -> ScoredSet:
    """A preset by name (its folder under the shared datasets) or any folder with a
    ``scores.csv``; the columns given override the preset's or the file's."""
    text = str(name_or_folder)
    preset = PRESETS.get(text)
    if preset is not None and not Path(text).is_dir():
        scored = replace(preset, root=shared_root(text))
    else:
        scored = ScoredSet(Path(text))
    overrides = {"quality": quality, "alignment": alignment, "group": group}
    scored = replace(scored, **{k: v for k, v in overrides.items() if v is not None})
    if not (scored.root / SCORES_FILE).is_file():
        known = ", ".join(PRESETS)
        raise FileNotFoundError(
            f"no {SCORES_FILE} in {scored.root}: pass a folder with one, or a preset ({known})"
        )
    return scored


def read_scored_set(scored: ScoredSet) -> tuple[ScoredSet, pd.DataFrame]:
    """The set with every column settled, and its table with an ``image`` (path) and a
    ``prompt`` column (None where the set has no prompts); a missing column or image is a
    ValueError or FileNotFoundError that names it."""
    path = scored.root / SCORES_FILE
    frame = pd.read_csv(path)
    columns = list(frame.columns)
    quality = scored.quality or _quality_column(frame, path)
    group = scored.group or next((c for c in GROUP_COLUMNS if c in columns), None)
    prompt = scored.prompt if scored.prompt in columns else None
    alignment = scored.alignment or next((c for c in ALIGNMENT_COLUMNS if c in columns), None)
    roles = {"name": scored.name, "quality": quality, "alignment": alignment, "group": group}
    for role, column in roles.items():
        if column is not None and column not in columns:
            raise ValueError(f"{path} has no {role} column {column!r}; its columns: {columns}")
    settled = replace(scored, quality=quality, alignment=alignment, group=group, prompt=prompt)
    images = scored.root / "images"
    names = frame[scored.name].astype(str)
    frame["image"] = [str(images / name) for name in names]
    missing = [name for name in names if not (images / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} images named in {path} are not under {images}, e.g. {missing[0]!r}"
        )
    frame["prompt"] = frame[prompt] if prompt is not None else None
    return settled, frame


def _quality_column(frame: pd.DataFrame, path: Path) -> str:
    for column in QUALITY_COLUMNS:
        if column in frame.columns:
            return column
    numeric = [c for c in frame.select_dtypes("number").columns]
    if len(numeric) == 1:
        return numeric[0]
    raise ValueError(
        f"{path}: say which column holds the quality score (--quality-column); "
        f"numeric columns: {numeric}"
    )
