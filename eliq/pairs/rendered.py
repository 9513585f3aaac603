"""Pairs of renders a generator made itself: one prompt and seed, rendered as intended and
rendered worse (fewer denoising steps, an off-range guidance scale).

The daemon makes such negatives while it samples a release
(:func:`eliq.pairs.generative.resampling_families`). Renders made elsewhere in these ways
(a dataset's low-step or off-guidance groups beside its normal ones) become a pair set here,
labelled by how they were generated, never by a score, so that what they teach can be
measured on other generators (:func:`eliq.experiments.leave_generators_out`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eliq import __version__
from eliq.pairs.generative import RESAMPLING
from eliq.pairs.pairset import PairRecord, PairSet, PairSetWriter


@dataclass(frozen=True)
class Render:
    """One prompt's intended render (``positive``) and its degraded render (``negative``)."""

    key: str
    positive: Path
    negative: Path
    prompt: str | None


def rendered_pair_set(renders: Sequence[Render], family: str, out: Path) -> PairSet:
    """Write ``renders`` as a pair set of ``family`` (a key of
    :data:`~eliq.pairs.generative.RESAMPLING`) to ``out``, the image files copied as they are;
    a rerun with the same renders finds it done."""
    if family not in RESAMPLING:
        raise ValueError(f"unknown resampling family {family!r}; known: {sorted(RESAMPLING)}")
    if not renders:
        raise ValueError("no renders to pair")
    for side, names in (
        ("key", [r.key for r in renders]),
        ("positive", [r.positive.name for r in renders]),
        ("negative", [r.negative.name for r in renders]),
    ):
        if len(set(names)) != len(names):
            raise ValueError(f"two renders share a {side} name")
    digest = hashlib.sha256(
        json.dumps([[r.key, str(r.positive), str(r.negative), r.prompt] for r in renders]).encode()
    ).hexdigest()
    out = Path(out)
    # the writer refuses a folder built from other renders; all pairs go in one part
    writer = PairSetWriter(out, {"eliq": __version__, "family": family, "renders": digest})
    existing = PairSet(out)
    if existing.info.get("complete"):
        return existing
    records = []
    for render in renders:
        positive = writer.positives_dir / render.positive.name
        negative = writer.negatives_dir / render.negative.name
        shutil.copyfile(render.positive, positive)
        shutil.copyfile(render.negative, negative)
        records.append(
            PairRecord(
                pair_id=f"{render.key}-{family}",
                positive_id=render.key,
                positive=str(positive.relative_to(out)),
                negative=str(negative.relative_to(out)),
                positive_prompt=render.prompt,
                negative_prompt=render.prompt,
                aspect="technical",
                family=family,
                kind="ai_specific",
                severity=1,
                seed=0,
                provenance=json.dumps(
                    {"source": str(render.positive), "rendered": str(render.negative)},
                    sort_keys=True,
                ),
            )
        )
    writer.write_part(records, [])
    return writer.finish()
