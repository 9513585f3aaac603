"""How good is a critic? Correlation with human scores, and label-free pair accuracy.

Human opinion scores are read here, and only here, to *evaluate* a critic; nothing under
``eliq.pairs`` or ``eliq.train`` reads them. Correlations: Spearman's rank (SRCC), Pearson's
linear (PLCC, on raw scores), each with a bootstrap interval over the images, and Kendall's
tau between the critic's and the humans' ranking of groups (generators) by their mean score
(the monitoring question: is the new release better?). Every evaluation also reports the
critic's untrained prior, from the same forward pass: a gain is what training added to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from eliq.critic.critic import Critic
from eliq.critic.features import FeatureCache
from eliq.intervals import Interval, linear_agreement, rank_agreement
from eliq.scored_sets import PRESETS, ScoredSet, read_scored_set, shared_root
from eliq.seeding import derive_seed
from eliq.train.data import load_pairs, split_held_out
from eliq.train.pair_outcomes import accuracy_per_family, pair_accuracy, pair_outcomes

AXES = ("quality", "alignment")
AGIQA_AXES = {"quality": "mos_quality", "alignment": "mos_align"}
SCORERS = {"critic": "", "prior": "prior_"}
"""Who is evaluated, and the prefix of their score columns."""


@dataclass
class Correlation:
    srcc: float
    plcc: float
    n: int
    srcc_interval: Interval | None = None
    plcc_interval: Interval | None = None

    def srcc_text(self) -> str:
        """SRCC with its interval where there is one: ``0.706 [0.687, 0.724]``."""
        return _with_interval(self.srcc, self.srcc_interval)

    def plcc_text(self) -> str:
        return _with_interval(self.plcc, self.plcc_interval)


def _with_interval(value: float, interval: Interval | None) -> str:
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


@dataclass
class AxisReport:
    """One axis (quality or alignment) of one scorer against one set of human scores."""

    overall: Correlation
    per_group: dict[str, Correlation]
    within_group_srcc: float
    """Mean SRCC inside each group: can it tell a good image from a bad one of one release?
    (nan for a set without groups)"""
    group_means: Correlation
    """SRCC/PLCC over the groups' mean scores."""
    group_kendall_tau: float


@dataclass
class Report:
    """Each scorer's (``critic``, ``prior``) axes against the human scores of one set."""

    name: str
    scorers: dict[str, dict[str, AxisReport]]
    scores: pd.DataFrame = field(repr=False)

    @property
    def axes(self) -> dict[str, AxisReport]:
        """The critic's axes."""
        return self.scorers["critic"]

    def to_json(self) -> dict:
        """Every number of the report (not the per-image scores)."""
        return {
            "name": self.name,
            "images": len(self.scores),
            "scorers": {
                scorer: {axis: asdict(report) for axis, report in axes.items()}
                for scorer, axes in self.scorers.items()
            },
        }

    def table(self) -> str:
        """A Markdown table of the headline numbers, the critic beside its prior."""
        lines = [
            f"{self.name} ({len(self.scores)} images), SRCC and PLCC with 95% bootstrap intervals",
            "",
            "| scorer | axis | SRCC | PLCC | within-group SRCC | group-mean SRCC "
            "| group Kendall tau |",
            "|---|---|---|---|---|---|---|",
        ]
        for scorer, axes in self.scorers.items():
            for name, axis in axes.items():
                lines.append(
                    f"| {scorer} | {name} | {axis.overall.srcc_text()} | "
                    f"{axis.overall.plcc_text()} | {_cell(axis.within_group_srcc)} | "
                    f"{_cell(axis.group_means.srcc)} | {_cell(axis.group_kendall_tau)} |"
                )
        return "\n".join(lines)

    def group_table(self) -> str:
        """Per group: each scorer's SRCC (with its interval) on each axis."""
        axes = list(self.axes)
        header = [f"{s} {a}" for a in axes for s in self.scorers]
        lines = [
            "| group | images | " + " | ".join(header) + " |",
            "|---|---|" + "---|" * len(header),
        ]
        for group, first in self.axes[axes[0]].per_group.items():
            cells = [
                self.scorers[s][a].per_group[group].srcc_text() for a in axes for s in self.scorers
            ]
            lines.append(f"| {group} | {first.n} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _cell(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.3f}"


def correlation(
    predicted: Sequence[float], human: Sequence[float], intervals: bool = False
) -> Correlation:
    """SRCC and PLCC over the finite pairs; ``intervals`` adds bootstrap intervals."""
    predicted, human = np.asarray(predicted, float), np.asarray(human, float)
    keep = np.isfinite(predicted) & np.isfinite(human)
    predicted, human = predicted[keep], human[keep]
    if len(predicted) < 3 or np.ptp(predicted) == 0 or np.ptp(human) == 0:
        return Correlation(float("nan"), float("nan"), int(len(predicted)))
    result = Correlation(
        float(stats.spearmanr(predicted, human).statistic),
        float(stats.pearsonr(predicted, human).statistic),
        int(len(predicted)),
    )
    if not intervals:
        return result
    return replace(
        result,
        srcc_interval=rank_agreement(predicted, human),
        plcc_interval=linear_agreement(predicted, human),
    )


def axis_report(
    frame: pd.DataFrame, predicted: str, human: str, group: str | None, intervals: bool = False
) -> AxisReport:
    """``predicted`` against ``human`` over ``frame``, overall and per ``group`` (a column,
    or None for a set without groups)."""
    nan = float("nan")
    if group is None:
        return AxisReport(
            correlation(frame[predicted], frame[human], intervals),
            {},
            nan,
            Correlation(nan, nan, 0),
            nan,
        )
    per_group = {
        str(name): correlation(part[predicted], part[human], intervals)
        for name, part in frame.groupby(group)
    }
    means = frame.groupby(group)[[predicted, human]].mean()
    return AxisReport(
        overall=correlation(frame[predicted], frame[human], intervals),
        per_group=per_group,
        within_group_srcc=float(np.nanmean([c.srcc for c in per_group.values()])),
        group_means=correlation(means[predicted], means[human]),
        group_kendall_tau=float(stats.kendalltau(means[predicted], means[human]).statistic),
    )


def default_agiqa3k_root() -> Path:
    """Where the shared AGIQA-3K set is (see :func:`eliq.scored_sets.shared_root`)."""
    return shared_root("agiqa3k")


def require_agiqa3k(root: Path) -> Path:
    """``root`` if it holds AGIQA-3K, else a FileNotFoundError that says what to pass."""
    if not (Path(root) / "scores.csv").is_file():
        raise FileNotFoundError(f"no AGIQA-3K folder at {root} (scores.csv, images/); pass --root")
    return Path(root)


def read_agiqa3k(root: Path) -> pd.DataFrame:
    """The AGIQA-3K table: image path, generator, prompt and the human scores."""
    require_agiqa3k(root)
    return read_scored_set(replace(PRESETS["agiqa3k"], root=Path(root)))[1]


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
    with_prior: bool = False,
) -> pd.DataFrame:
    """``frame`` (columns ``image``, ``prompt``) with the critic's ``quality`` and
    ``alignment`` columns added (and ``prior_quality``, ``prior_alignment`` with
    ``with_prior``); with ``features``, vision features come from (and go to) that
    cache."""
    images = list(frame["image"])
    prompts = list(frame["prompt"])
    if features is not None:
        features.precompute(images, progress)
    prefixes = list(SCORERS.values()) if with_prior else [""]
    columns: dict[str, list] = {f"{p}{axis}": [] for p in prefixes for axis in AXES}
    for start in tqdm(
        range(0, len(images), batch_size), desc="scoring", unit="batch", disable=not progress
    ):
        chunk = slice(start, start + batch_size)
        if with_prior:
            rows = critic.score_with_prior(images[chunk], prompts[chunk], batch_size, features)
        else:
            rows = [(s,) for s in critic.score(images[chunk], prompts[chunk], batch_size, features)]
        for row in rows:
            for prefix, score in zip(prefixes, row, strict=True):
                columns[f"{prefix}quality"].append(score.quality)
                columns[f"{prefix}alignment"].append(score.alignment)
    return frame.assign(**columns)


def evaluate(
    critic: Critic,
    scored: ScoredSet,
    batch_size: int = 16,
    progress: bool = True,
    limit: int | None = None,
    features: FeatureCache | None = None,
) -> Report:
    """The critic and its untrained prior against a scored set's human scores (quality,
    and alignment where the set has it and prompts); ``limit`` keeps an even sample of
    about that many images."""
    scored, frame = read_scored_set(scored)
    frame = sample_rows(frame, limit)
    table = score_table(critic, frame, batch_size, progress, features, with_prior=True)
    humans = {"quality": scored.quality}
    if scored.alignment is not None and scored.prompt is not None:
        humans["alignment"] = scored.alignment
    scorers = {
        scorer: {
            axis: axis_report(table, f"{prefix}{axis}", human, scored.group, intervals=True)
            for axis, human in humans.items()
        }
        for scorer, prefix in SCORERS.items()
    }
    return Report(scored.label, scorers, table)


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
