"""How good is a critic? Correlation with human scores, and label-free pair accuracy.

Human opinion scores are read here, and only here, to *evaluate* a critic; nothing under
``eliq.pairs`` or ``eliq.train`` reads them. Correlations: Spearman's rank (SRCC), Pearson's
linear (PLCC, on raw scores) and Kendall's tau between the critic's and the humans' ranking
of generators by their mean score (the monitoring question: is the new release better?).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from eliq.critic.critic import Critic
from eliq.critic.features import FeatureCache
from eliq.seeding import derive_seed
from eliq.train.data import load_pairs, split_held_out
from eliq.train.pair_outcomes import accuracy_per_family, pair_accuracy, pair_outcomes

AGIQA_AXES = {"quality": "mos_quality", "alignment": "mos_align"}


@dataclass
class Correlation:
    srcc: float
    plcc: float
    n: int


@dataclass
class AxisReport:
    """One axis (quality or alignment) of one critic against one set of human scores."""

    overall: Correlation
    per_group: dict[str, Correlation]
    within_group_srcc: float
    """Mean SRCC inside each group: can it tell a good image from a bad one of one release?"""
    group_means: Correlation
    """SRCC/PLCC over the groups' mean scores."""
    group_kendall_tau: float


@dataclass
class Report:
    axes: dict[str, AxisReport]
    scores: pd.DataFrame = field(repr=False)

    def table(self) -> str:
        """A Markdown table of the headline numbers."""
        lines = [
            "| axis | SRCC | PLCC | within-group SRCC | group-mean SRCC | group Kendall tau |",
            "|---|---|---|---|---|---|",
        ]
        for name, axis in self.axes.items():
            lines.append(
                f"| {name} | {axis.overall.srcc:.3f} | {axis.overall.plcc:.3f} | "
                f"{axis.within_group_srcc:.3f} | {axis.group_means.srcc:.3f} | "
                f"{axis.group_kendall_tau:.3f} |"
            )
        return "\n".join(lines)


def correlation(predicted: Sequence[float], human: Sequence[float]) -> Correlation:
    predicted, human = np.asarray(predicted, float), np.asarray(human, float)
    keep = np.isfinite(predicted) & np.isfinite(human)
    predicted, human = predicted[keep], human[keep]
    if len(predicted) < 3 or np.ptp(predicted) == 0 or np.ptp(human) == 0:
        return Correlation(float("nan"), float("nan"), int(len(predicted)))
    return Correlation(
        float(stats.spearmanr(predicted, human).statistic),
        float(stats.pearsonr(predicted, human).statistic),
        int(len(predicted)),
    )


def axis_report(frame: pd.DataFrame, predicted: str, human: str, group: str) -> AxisReport:
    per_group = {
        name: correlation(part[predicted], part[human]) for name, part in frame.groupby(group)
    }
    means = frame.groupby(group)[[predicted, human]].mean()
    return AxisReport(
        overall=correlation(frame[predicted], frame[human]),
        per_group=per_group,
        within_group_srcc=float(np.nanmean([c.srcc for c in per_group.values()])),
        group_means=correlation(means[predicted], means[human]),
        group_kendall_tau=float(stats.kendalltau(means[predicted], means[human]).statistic),
    )


def default_agiqa3k_root() -> Path:
    """``../shared/datasets/agiqa3k`` from here, or else beside this source checkout, so
    the default works from any directory of a checkout that sits beside ``shared/``."""
    relative = Path("../shared/datasets/agiqa3k")
    beside_checkout = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "agiqa3k"
    return relative if relative.is_dir() or not beside_checkout.is_dir() else beside_checkout


def require_agiqa3k(root: Path) -> Path:
    """``root`` if it holds AGIQA-3K, else a FileNotFoundError that says what to pass."""
    if not (Path(root) / "scores.csv").is_file():
        raise FileNotFoundError(f"no AGIQA-3K folder at {root} (scores.csv, images/); pass --root")
    return Path(root)


def read_agiqa3k(root: Path) -> pd.DataFrame:
    """The AGIQA-3K table: image path, generator, prompt and the human scores."""
    require_agiqa3k(root)
    frame = pd.read_csv(Path(root) / "scores.csv")
    frame["image"] = [str(Path(root) / "images" / name) for name in frame["name"]]
    return frame


def sample_rows(frame: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """An even sample of about ``limit`` rows (every k-th), or all of them."""
    if limit is None or limit >= len(frame):
        return frame
    return frame.iloc[:: max(1, len(frame) // limit)].reset_index(drop=True)


def score_table(
    critic: Critic,
    frame: pd.DataFrame,
    batch_size: int = 16,
    progress: bool = True,
    features: FeatureCache | None = None,
) -> pd.DataFrame:
    """``frame`` (columns ``image``, ``prompt``) with the critic's ``quality`` and
    ``alignment`` columns added; with ``features``, vision features come from (and go to)
    that cache."""
    images = list(frame["image"])
    prompts = list(frame["prompt"])
    if features is not None:
        features.precompute(images, progress)
    scores = []
    for start in tqdm(
        range(0, len(images), batch_size), desc="scoring", unit="batch", disable=not progress
    ):
        chunk = slice(start, start + batch_size)
        scores += critic.score(images[chunk], prompts[chunk], batch_size, features)
    return frame.assign(
        quality=[s.quality for s in scores], alignment=[s.alignment for s in scores]
    )


def evaluate_agiqa3k(
    critic: Critic,
    root: Path,
    batch_size: int = 16,
    progress: bool = True,
    limit: int | None = None,
) -> Report:
    """The critic against AGIQA-3K; ``limit`` keeps an even sample of about that many."""
    scored = score_table(critic, sample_rows(read_agiqa3k(root), limit), batch_size, progress)
    return Report(
        {axis: axis_report(scored, axis, human, "generator") for axis, human in AGIQA_AXES.items()},
        scored,
    )


@dataclass(frozen=True)
class PairAccuracy:
    mean: float | None
    per_family: dict[str, float]
    pairs: int
    outcomes: dict[str, bool] = field(default_factory=dict)
    """Per pair, keyed ``"<pair set name>/<pair id>"``: ranked right? (what a paired
    comparison of two critics needs)"""
    scored: int = 0
    """How many of the pairs were scored now; the others' outcomes were given."""


def held_out_accuracy(
    critic: Critic,
    pair_sets: Mapping[str, Path],
    fraction: float,
    seed: int = 0,
    known: Mapping[str, bool] | None = None,
    features: FeatureCache | None = None,
    limit: int | None = None,
) -> PairAccuracy:
    """Pair accuracy on the positives that training with the same ``held_out_fraction`` and
    ``seed`` held out of ``pair_sets`` (by name; from new pairs and replay alike): the
    label-free test of a retune, on the new release and on earlier ones.

    ``known``: outcomes this same critic had on some of these pairs (keys as in
    :attr:`PairAccuracy.outcomes`); they are reused, not scored again, so a caller that
    keeps outcomes pays only for the pairs the critic has not ranked yet.

    ``limit``: rank at most this many of the held-out pairs (see :func:`bounded_sample`),
    so that a test over a growing history costs the same each time."""
    frames = [
        load_pairs([root], "evaluation").assign(key=lambda f, n=name: n + "/" + f["pair_id"])
        for name, root in pair_sets.items()
    ]
    _, held_out = split_held_out(pd.concat(frames, ignore_index=True), fraction, seed)
    if limit is not None:
        held_out = bounded_sample(held_out, limit, seed)
    if held_out.empty:
        return PairAccuracy(None, {}, 0)
    right = dict(known or {})
    todo = held_out[~held_out["key"].isin(right)]
    if len(todo):
        features = features or critic.feature_cache()
        right.update(zip(todo["key"], pair_outcomes(critic, todo, features)["right"], strict=True))
    outcomes = held_out.assign(right=[bool(right[key]) for key in held_out["key"]])
    return PairAccuracy(
        float(outcomes["right"].mean()),
        accuracy_per_family(outcomes),
        len(outcomes),
        dict(zip(outcomes["key"], outcomes["right"], strict=True)),
        len(todo),
    )


def bounded_sample(pairs: pd.DataFrame, limit: int, seed: int = 0) -> pd.DataFrame:
    """The ``limit`` pairs (column ``key``) with the lowest seeded hash of their key, in
    their order. Drawn from a grown set, the sample keeps only pairs that the smaller set's
    sample held too, so what a critic ranked for an earlier, smaller history is reused."""
    if len(pairs) <= limit:
        return pairs
    draws = pd.Series([derive_seed(seed, "bounded", key) for key in pairs["key"]], pairs.index)
    return pairs.loc[sorted(draws.nsmallest(limit, keep="first").index)]


def mean_pair_accuracy(per_family: dict[str, float], pairs: pd.DataFrame) -> float:
    """Accuracy over pairs, not families: every pair counts once."""
    counts = pairs["family"].value_counts()
    return float(sum(per_family[f] * n for f, n in counts.items()) / counts.sum())


def pairset_accuracy(critic: Critic, roots: Sequence[Path]) -> dict[str, float]:
    """Pair accuracy per family over whole pair sets (e.g. a release's held-out pairs)."""
    return pair_accuracy(critic, load_pairs(roots, "evaluation"), critic.feature_cache())
