"""Does training teach the critic anything its prior did not know? Two label-free experiments.

* :func:`leave_generators_out`: for each generator group of AGIQA-3K in turn, train on the
  other groups' images and prompts, score the held-out group, then retune on the held-out
  group's own images and prompts with the daemon's retune settings (replaying the others, as
  the daemon replays earlier releases) and score every group again. That is exactly what the
  daemon does when a new generator appears: the first score says whether the critic
  transfers, the second whether the retune pays off, the others whether it forgets. With
  ``renderings``, groups that are another group's prompts rendered worse by the same
  generator (fewer steps, off-range guidance) also become pairs, as the daemon's own
  renders of a release do: trained on in every fold that holds out neither side, retuned on
  in the fold that holds out the intended renders.
* :func:`leave_families_out`: train without one negative family (or a set of them, e.g. every
  AI-specific one) and measure pair accuracy on it: does the critic learn quality, or only
  to spot its own distortions?

Both compare the trained critic with its own untrained prior (the same critic before any
step) in the same run. Human scores are read only to evaluate, as in :mod:`eliq.evaluation`.
Every run shares one pair set per generator group and one on-disk feature cache under
``out``, so each image's vision features are computed once across folds and reruns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from eliq.config import PairSettings
from eliq.critic.config import CriticConfig
from eliq.critic.critic import Critic
from eliq.critic.features import FeatureCache
from eliq.evaluation import (
    AGIQA_AXES,
    correlation,
    mean_pair_accuracy,
    read_agiqa3k,
    sample_rows,
    score_table,
)
from eliq.pairs.rendered import Render, rendered_pair_set
from eliq.scored_sets import ScoredSet, read_scored_set
from eliq.train.data import load_pairs, split_held_out
from eliq.train.pair_outcomes import pair_accuracy
from eliq.train.settings import RETUNE_DEFAULTS, TrainSettings
from eliq.train.trainer import new_critic, train

log = logging.getLogger(__name__)
STAGES = ("prior", "trained", "retuned")


@dataclass(frozen=True)
class Rendering:
    """A generator group holding another group's prompts rendered worse by the same
    generator: known from how it was generated, never from its scores."""

    group: str
    reference: str
    """The group of the same prompts rendered as intended."""
    family: str
    """How it is worse: a key of :data:`eliq.pairs.generative.RESAMPLING`."""


AGIQA3K_RENDERINGS = (
    Rendering("sd1.5_lowstep", "sd1.5_normal", "fewer_steps"),
    Rendering("sd1.5_highcorr", "sd1.5_normal", "off_guidance"),
    Rendering("sd1.5_lowcorr", "sd1.5_normal", "off_guidance"),
)
"""AGIQA-3K's Stable Diffusion 1.5 groups: its prompt suite rendered with few denoising
iterations and with a classifier-free guidance scale set high and low, beside the default
renders (Li et al., "AGIQA-3K", IEEE TCSVT 2023)."""


@dataclass(frozen=True)
class GeneratorFold:
    """One held-out generator group. Each dict maps a stage (``prior``, ``trained``,
    ``retuned``) to an SRCC against the human scores."""

    group: str
    images: int
    quality: dict[str, float]
    """On the held-out group alone (within-group ranking)."""
    alignment: dict[str, float]
    others_quality: dict[str, float]
    """Mean within-group quality SRCC over the groups the fold trained on."""
    overall_quality: dict[str, float]
    """Over every image of every group: is the held-out group placed right among them?"""
    photos_quality: dict[str, float] = field(default_factory=dict)
    """On the camera photos (a scored set no fold trains on), when the run has them: what
    training and the retune did to what the prior knew about photographs."""

    @property
    def retune_gain(self) -> float:
        return self.quality["retuned"] - self.quality["trained"]

    @property
    def forgetting(self) -> float:
        return self.others_quality["trained"] - self.others_quality["retuned"]


@dataclass(frozen=True)
class GeneratorsOutReport:
    folds: list[GeneratorFold]

    def summary(self) -> dict[str, float | int]:
        def mean(values) -> float:
            return float(np.nanmean(list(values)))

        return {
            "quality_prior": mean(f.quality["prior"] for f in self.folds),
            "quality_trained": mean(f.quality["trained"] for f in self.folds),
            "quality_retuned": mean(f.quality["retuned"] for f in self.folds),
            "alignment_prior": mean(f.alignment["prior"] for f in self.folds),
            "alignment_trained": mean(f.alignment["trained"] for f in self.folds),
            "alignment_retuned": mean(f.alignment["retuned"] for f in self.folds),
            "quality_gain_over_prior": mean(
                f.quality["trained"] - f.quality["prior"] for f in self.folds
            ),
            "alignment_gain_over_prior": mean(
                f.alignment["trained"] - f.alignment["prior"] for f in self.folds
            ),
            **{
                f"photos_{stage}": mean(f.photos_quality.get(stage, np.nan) for f in self.folds)
                for stage in STAGES
            },
            "retune_gain": mean(f.retune_gain for f in self.folds),
            "groups_improved_by_retune": sum(f.retune_gain > 0 for f in self.folds),
            "forgetting": mean(f.forgetting for f in self.folds),
        }

    def to_json(self) -> dict:
        return {"folds": [asdict(f) for f in self.folds], "summary": self.summary()}

    def table(self) -> str:
        lines = [
            "| held-out group | images | quality: prior | trained | retuned | alignment: prior "
            "| trained | retuned | others' quality: trained | retuned | overall quality: "
            "prior | trained | retuned | photos: prior | trained | retuned |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in self.folds:
            cells = [
                *(f.quality[s] for s in STAGES),
                *(f.alignment[s] for s in STAGES),
                f.others_quality["trained"],
                f.others_quality["retuned"],
                *(f.overall_quality[s] for s in STAGES),
                *(f.photos_quality.get(s, np.nan) for s in STAGES),
            ]
            lines.append(
                f"| {f.group} | {f.images} | " + " | ".join(f"{c:.3f}" for c in cells) + " |"
            )
        s = self.summary()
        lines += [
            "",
            f"mean held-out within-group SRCC: quality prior {s['quality_prior']:.3f}, "
            f"trained {s['quality_trained']:.3f} ({s['quality_gain_over_prior']:+.3f}), "
            f"retuned {s['quality_retuned']:.3f}; alignment prior {s['alignment_prior']:.3f}, "
            f"trained {s['alignment_trained']:.3f} ({s['alignment_gain_over_prior']:+.3f}), "
            f"retuned {s['alignment_retuned']:.3f}",
            f"photos: prior {s['photos_prior']:.3f}, trained {s['photos_trained']:.3f}, "
            f"retuned {s['photos_retuned']:.3f}",
            f"retune: {s['groups_improved_by_retune']} of {len(self.folds)} groups improved, "
            f"mean {s['retune_gain']:+.3f}; the other groups lost {s['forgetting']:+.3f} "
            "(forgetting)",
        ]
        return "\n".join(lines)


def group_pair_sets(
    frame: pd.DataFrame, out: Path, settings: PairSettings | None, progress: bool = True
) -> dict[str, Path]:
    """One pair set per generator group, from its images and prompts only (a build that
    was interrupted resumes)."""
    from eliq.pairs.factory import PairFactory
    from eliq.pairs.positives import Positive

    factory = PairFactory(settings)
    roots = {}
    for group, part in frame.groupby("generator"):
        positives = [
            Positive(key=Path(image).name, image=Path(image), prompt=prompt)
            for image, prompt in zip(part["image"], part["prompt"], strict=True)
        ]
        roots[str(group)] = factory.build(positives, Path(out) / str(group), progress).root
    return roots


def rendered_pair_sets(
    frame: pd.DataFrame, renderings: Sequence[Rendering], out: Path
) -> dict[Rendering, Path]:
    """One pair set per rendering whose two groups are both in ``frame``: each intended
    render against the same prompt's worse render (matched by the image name's number)."""
    roots = {}
    for rendering in renderings:
        intended, worse = (
            _numbered(frame, group) for group in (rendering.reference, rendering.group)
        )
        matched = intended.merge(worse, on="number", suffixes=("_intended", "_worse"))
        if matched.empty:
            continue
        differ = matched[matched["prompt_intended"] != matched["prompt_worse"]]
        if not differ.empty:
            raise ValueError(
                f"{rendering.group} is not {rendering.reference}'s prompts rendered again: "
                f"{differ['name_worse'].iloc[0]} has another prompt than "
                f"{differ['name_intended'].iloc[0]}"
            )
        renders = [
            Render(
                row.name_intended,
                Path(row.image_intended),
                Path(row.image_worse),
                row.prompt_intended,
            )
            for row in matched.itertuples()
        ]
        roots[rendering] = rendered_pair_set(
            renders, rendering.family, Path(out) / rendering.group
        ).root
    return roots


def _numbered(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """``group``'s rows with the image name's number (the name less the group's prefix)."""
    part = frame[frame["generator"] == group]
    return part.assign(number=part["name"].str.removeprefix(group))


def leave_generators_out(
    root: Path,
    out: Path,
    groups: Sequence[str] | None = None,
    pair_settings: PairSettings | None = None,
    train_settings: TrainSettings | None = None,
    retune_settings: TrainSettings = RETUNE_DEFAULTS,
    critic_config: CriticConfig | None = None,
    limit: int | None = None,
    progress: bool = True,
    photos: ScoredSet | None = None,
    pristine: Sequence[Path] = (),
    renderings: Sequence[Rendering] = (),
) -> GeneratorsOutReport:
    """Hold out each of ``groups`` (default: every group) in turn; see the module docstring.
    ``limit`` keeps an even sample of about that many images (its pair sets live apart
    from those of other limits; the feature cache is shared). ``photos``: a scored set
    (camera photos) every stage is also measured on; ``pristine``: the photographs a
    critic with a pristine prior fits it to (see :func:`eliq.train.trainer.new_critic`);
    ``renderings``: groups of worse renders to pair (see the module docstring)."""
    out = Path(out)
    frame = sample_rows(read_agiqa3k(root), limit)
    known = sorted(frame["generator"].unique())
    groups = list(groups or known)
    unknown = sorted(set(groups) - set(known))
    if unknown:
        raise ValueError(f"unknown generator groups {unknown}; known: {known}")
    if len(known) < 2:
        raise ValueError("leaving generators out needs at least two generator groups")
    pair_sets = group_pair_sets(frame, out / f"pairs-{limit or 'all'}", pair_settings, progress)
    rendered = rendered_pair_sets(frame, renderings, out / f"rendered-{limit or 'all'}")
    cache = out / "features"
    device = (train_settings or TrainSettings()).device
    photos, photo_frame = read_scored_set(photos) if photos is not None else (None, None)
    prior_critic = new_critic(critic_config, device, pristine)
    prior = _scores(prior_critic, frame, cache, progress)
    prior_photos = _photo_quality(prior_critic, photos, photo_frame, cache)
    folds = []
    for group in groups:
        fold = out / "folds" / group
        others = [path for name, path in pair_sets.items() if name != group]
        others += [path for r, path in rendered.items() if group not in (r.group, r.reference)]
        own = [pair_sets[group], *(path for r, path in rendered.items() if r.reference == group)]
        log.info("fold %s: training on %d other pair sets", group, len(others))
        trained = train(
            others,
            fold / "trained",
            train_settings,
            config=critic_config,
            progress=progress,
            feature_cache=cache,
            pristine=pristine,
        )
        log.info("fold %s: retuning on its own images", group)
        retuned = train(
            own,
            fold / "retuned",
            retune_settings,
            init=fold / "trained",
            replay=others,
            progress=progress,
            feature_cache=cache,
        )
        scores = {
            "prior": prior,
            "trained": _scores(trained.critic, frame, cache, progress),
            "retuned": _scores(retuned.critic, frame, cache, progress),
        }
        photo_quality = {
            "prior": prior_photos,
            "trained": _photo_quality(trained.critic, photos, photo_frame, cache),
            "retuned": _photo_quality(retuned.critic, photos, photo_frame, cache),
        }
        folds.append(_fold(group, scores, photo_quality))
        log.info("fold %s: %s", group, folds[-1])
    return GeneratorsOutReport(folds)


def _scores(critic: Critic, frame: pd.DataFrame, cache: Path, progress: bool) -> pd.DataFrame:
    return score_table(critic, frame, progress=progress, features=critic.feature_cache(cache))


def _photo_quality(
    critic: Critic, photos: ScoredSet | None, frame: pd.DataFrame | None, cache: Path
) -> float:
    """The critic's quality SRCC on the photos (nan without them)."""
    if photos is None or frame is None:
        return float("nan")
    scored = score_table(critic, frame, progress=False, features=critic.feature_cache(cache))
    return correlation(scored["quality"], scored[photos.quality]).srcc


def _fold(group: str, scores: dict[str, pd.DataFrame], photos: dict[str, float]) -> GeneratorFold:
    quality, human_quality = "quality", AGIQA_AXES["quality"]

    def within(frame: pd.DataFrame, axis: str) -> float:
        return correlation(frame[axis], frame[AGIQA_AXES[axis]]).srcc

    held = {s: f[f["generator"] == group] for s, f in scores.items()}
    others = {s: f[f["generator"] != group] for s, f in scores.items()}
    return GeneratorFold(
        group=group,
        images=len(held["prior"]),
        quality={s: within(held[s], "quality") for s in STAGES},
        alignment={s: within(held[s], "alignment") for s in STAGES},
        others_quality={
            s: float(
                np.nanmean([within(part, "quality") for _, part in others[s].groupby("generator")])
            )
            for s in ("trained", "retuned")
        },
        overall_quality={
            s: correlation(scores[s][quality], scores[s][human_quality]).srcc for s in STAGES
        },
        photos_quality={s: v for s, v in photos.items() if np.isfinite(v)},
    )


# -- leave families out ---------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyFold:
    left_out: list[str]
    pairs: int
    prior: float
    """Pair accuracy of the untrained critic on the left-out families' pairs."""
    left_out_accuracy: float
    """The same pairs, after training without those families."""
    seen_accuracy: float
    """Held-out pair accuracy on the families it did train on (did the fold train at all?)."""


@dataclass(frozen=True)
class FamiliesOutReport:
    folds: list[FamilyFold]

    def summary(self) -> dict[str, float]:
        return {
            "prior": float(np.mean([f.prior for f in self.folds])),
            "left_out_accuracy": float(np.mean([f.left_out_accuracy for f in self.folds])),
            "seen_accuracy": float(np.mean([f.seen_accuracy for f in self.folds])),
        }

    def to_json(self) -> dict:
        return {"folds": [asdict(f) for f in self.folds], "summary": self.summary()}

    def table(self) -> str:
        lines = [
            "| left out | pairs | prior | trained without it | held-out accuracy on the rest |",
            "|---|---|---|---|---|",
        ]
        for f in self.folds:
            lines.append(
                f"| {', '.join(f.left_out)} | {f.pairs} | {f.prior:.3f} | "
                f"{f.left_out_accuracy:.3f} | {f.seen_accuracy:.3f} |"
            )
        s = self.summary()
        lines += [
            "",
            f"mean pair accuracy on the left-out families: prior {s['prior']:.3f}, "
            f"trained without them {s['left_out_accuracy']:.3f}",
        ]
        return "\n".join(lines)


def family_units(pairs: pd.DataFrame, leave_out: Sequence[str] | None) -> list[list[str]]:
    """What to leave out, fold by fold: each entry is a family name or ``kind:<kind>`` (every
    family of that kind, e.g. ``kind:ai-specific``); default: every family on its own."""
    if not leave_out:
        return [[family] for family in sorted(pairs["family"].unique())]
    kinds = pairs.groupby("kind")["family"].unique()
    units = []
    for entry in leave_out:
        if entry.startswith("kind:"):
            kind = entry.removeprefix("kind:")
            if kind not in kinds:
                raise ValueError(f"no pairs of kind {kind!r}; kinds: {sorted(kinds.index)}")
            units.append(sorted(kinds[kind]))
        elif entry in set(pairs["family"]):
            units.append([entry])
        else:
            raise ValueError(f"no pairs of family {entry!r}")
    return units


def leave_families_out(
    pair_sets: Sequence[Path],
    out: Path,
    leave_out: Sequence[str] | None = None,
    train_settings: TrainSettings | None = None,
    critic_config: CriticConfig | None = None,
    progress: bool = True,
    pristine: Sequence[Path] = (),
) -> FamiliesOutReport:
    """Train once per entry of ``leave_out`` (see :func:`family_units`) without it, and
    measure pair accuracy on all of its pairs (never trained on; their positives were, as
    positives of other families)."""
    out = Path(out)
    settings = train_settings or TrainSettings()
    pairs = load_pairs(pair_sets, "evaluation")
    units = family_units(pairs, leave_out)
    cache = out / "features"
    prior = new_critic(critic_config, settings.device, pristine)
    prior_store = prior.feature_cache(cache)
    folds = []
    for unit in units:
        name = "+".join(unit) if len(unit) < 4 else f"{unit[0]}+{len(unit) - 1}-more"
        result = train(
            pair_sets,
            out / "folds" / name,
            settings.model_copy(update={"exclude_families": unit}),
            config=critic_config,
            progress=progress,
            feature_cache=cache,
            pristine=pristine,
        )
        left_out = pairs[pairs["family"].isin(unit)]
        store = result.critic.feature_cache(cache)
        _, held = split_held_out(
            pairs[~pairs["family"].isin(unit)], settings.held_out_fraction, settings.seed
        )
        folds.append(
            FamilyFold(
                left_out=unit,
                pairs=len(left_out),
                prior=_accuracy(prior, left_out, prior_store),
                left_out_accuracy=_accuracy(result.critic, left_out, store),
                seen_accuracy=_accuracy(result.critic, held, store),
            )
        )
        log.info("left out %s: %s", name, folds[-1])
    return FamiliesOutReport(folds)


def _accuracy(critic: Critic, pairs: pd.DataFrame, store: FeatureCache) -> float:
    return mean_pair_accuracy(pair_accuracy(critic, pairs, store), pairs)
