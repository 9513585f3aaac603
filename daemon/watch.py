"""The periodic drift check: the current champion's view of every release.

A release's own cycle scores it with the critic of that moment. Once a later champion
takes over, the older releases have never been scored by it, and the leaderboard would
compare generators under different critics. The watch job fixes both sides:

* every finished release's samples are scored by the current champion (once per pair of
  release and critic version, kept as Parquet and summarised in ``release_scores``), in
  shards on the cycle's executor (:mod:`daemon.scoring`: Ray tasks on ``ray``);
* every release's mean scores carry a bootstrap interval (the leaderboard shows them);
* the latest release is compared with all earlier ones under that champion (the generator
  shift as the current critic sees it), saved as a ``watch`` drift check with its reports,
  once per champion and release. A breach joins the incident of the same shift that the
  release's own cycle may have raised: one shift, one alert.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from daemon.cycle import Cycle
from daemon.drift import save_check, shift_checks
from daemon.scoring import release_critics, score_shard, shard_images
from daemon.state import CriticVersion, DriftCheck, ReleaseRecord, ReleaseScore, ReleaseState
from eliq import intervals
from eliq.intervals import Interval

log = logging.getLogger(__name__)
SHARD_BATCHES = 4  # scoring batches of 16 images per task on the executor


def watch(cycle: Cycle) -> DriftCheck | None:
    """Run the periodic check; returns the drift check it stored (None: nothing new)."""
    champion = cycle.store.champion()
    done = cycle.store.releases([ReleaseState.done])
    if champion is None or not done:
        return None
    scored = {
        row.release_id: row.scores_path
        for row in cycle.store.rows(ReleaseScore, critic_version_id=champion.id)
    }
    unscored = [release for release in done if release.id not in scored]
    if unscored:
        frames = {release.id: cycle.samples(release) for release in unscored}
        try:
            scores = _score_on_executor(cycle, champion, frames)
        except InterruptedError:
            return None
        for release in unscored:
            scored[release.id] = _keep_scores(cycle, champion, release, scores[release.id])
    latest, earlier = done[-1], done[:-1]
    if not earlier or _already_checked(cycle, latest, champion):
        return None
    scores = {release.id: pd.read_parquet(scored[release.id]) for release in done}
    reference = pd.concat([scores[r.id] for r in earlier], ignore_index=True)
    current = scores[latest.id]
    result = save_check(
        cycle.drift,
        reference,
        current,
        shift_checks(reference, current, cycle.settings.drift),
        cycle.workspace(latest).drift(f"watch-v{champion.mlflow_version}"),
        tags=["watch", f"generator:{latest.name}"],
        metadata={"release": latest.id, "critic_version": str(champion.mlflow_version)},
    )
    result.summary["critic_version"] = champion.mlflow_version
    check = cycle.store.add(
        DriftCheck(
            kind="watch",
            release_id=latest.id,
            drifted=result.drifted,
            summary=result.summary,
            report_html=str(result.report_html),
            report_json=str(result.report_json),
        )
    )
    cycle.publish("watch", latest, result)
    if champion.run_id:
        cycle.critics.log_artifacts(
            champion.run_id, result.report_html.parent, f"drift/watch/{latest.name}"
        )
    cycle.raise_drift(check, latest)  # the cycle's own shift check of it shares its incident
    log.info(
        "watch: %s vs %d earlier release(s): drifted=%s", latest.id, len(earlier), check.drifted
    )
    return check


def _score_on_executor(
    cycle: Cycle, champion: CriticVersion, frames: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """Each frame (columns image, prompt) with the champion's prompt, quality and alignment,
    scored in shards on the cycle's executor (all releases' shards at once)."""
    shards = {
        release_id: shard_images(
            Path(champion.checkpoint),
            cycle.settings.device,
            frame,
            SHARD_BATCHES,
            cycle.feature_cache,
        )
        for release_id, frame in frames.items()
    }
    flat = [shard for parts in shards.values() for shard in parts]
    try:
        results = iter(cycle.executor.map(score_shard, flat, cycle.stop.is_set))
    finally:
        release_critics()
    scored = {}
    for release_id, frame in frames.items():
        rows = [row for _ in shards[release_id] for row in next(results)]
        scored[release_id] = pd.DataFrame(
            {
                "prompt": frame["prompt"].to_numpy(),
                "quality": [q for q, _ in rows],
                "alignment": [a for _, a in rows],
            }
        )
    return scored


def _keep_scores(
    cycle: Cycle, champion: CriticVersion, release: ReleaseRecord, frame: pd.DataFrame
) -> str:
    """Keep the release's scores as Parquet and their summary as a row; returns the
    Parquet file's path."""
    quality, alignment = _mean_interval(frame["quality"]), _mean_interval(frame["alignment"])
    path = cycle.workspace(release).scores(champion.mlflow_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    cycle.store.save(
        ReleaseScore(
            release_id=release.id,
            critic_version_id=champion.id,
            images=len(frame),
            quality_mean=float(frame["quality"].mean()),
            quality_std=float(frame["quality"].std(ddof=0)),
            alignment_mean=_mean(frame["alignment"]),
            alignment_std=_std(frame["alignment"]),
            quality_low=quality.low if quality else None,
            quality_high=quality.high if quality else None,
            alignment_low=alignment.low if alignment else None,
            alignment_high=alignment.high if alignment else None,
            scores_path=str(path),
        )
    )
    return str(path)


def _already_checked(cycle: Cycle, release: ReleaseRecord, champion: CriticVersion) -> bool:
    return any(
        check.summary.get("critic_version") == champion.mlflow_version
        for check in cycle.store.rows(DriftCheck, release_id=release.id, kind="watch")
    )


def _mean(values: pd.Series) -> float | None:
    return None if values.isna().all() else float(values.mean())


def _std(values: pd.Series) -> float | None:
    return None if values.isna().all() else float(values.std(ddof=0))


def _mean_interval(values: pd.Series) -> Interval | None:
    """The mean's bootstrap interval (None with fewer than two values)."""
    values = values.dropna().to_numpy(dtype=float)
    return intervals.mean(values) if len(values) >= 2 else None
