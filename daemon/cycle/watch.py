"""The periodic drift check: the current champion's view of every release.

A release's own cycle scores it with the critic of that moment. Once a later champion
takes over, the older releases have never been scored by it, and the leaderboard would
compare generators under different critics. The watch is the second pipeline, keyed by
champion instead of by release, with two units whose rows record that they are done:

* ``score``: every finished release's samples scored by the champion (once per pair of
  release and critic version, kept as Parquet and summarised in ``release_scores`` with a
  bootstrap interval on each mean, which the leaderboard shows), in shards on the
  executor (:mod:`daemon.tasks.score_shards`: Ray tasks on ``ray``);
* ``compare``: the latest release against all earlier ones under that champion (the
  generator shift as the current critic sees it), saved as a ``watch`` drift check with
  its reports, once per champion and release. A breach joins the incident of the same
  shift that the release's own cycle may have raised: one shift, one alert.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from daemon.cycle import history
from daemon.policy.drift import save_check, shift_checks
from daemon.policy.incidents import publish_report, raise_drift
from daemon.ports import Ports
from daemon.state.tables import CriticVersion, DriftCheck, ReleaseRecord, ReleaseScore, ReleaseState
from daemon.tasks.per_process import release_all
from daemon.tasks.score_shards import score_shard, shard_images
from eliq import intervals
from eliq.intervals import Interval

log = logging.getLogger(__name__)
SHARD_BATCHES = 4  # scoring batches of 16 images per task on the executor


def watch(ports: Ports) -> DriftCheck | None:
    """Bring the champion's view up to date; returns the drift check it stored (None:
    nothing new, or a stop)."""
    store = ports.store
    champion = store.champion()
    done = store.releases([ReleaseState.done])
    if champion is None or not done:
        return None
    scored = {row.release_id for row in store.rows(ReleaseScore, critic_version_id=champion.id)}
    unscored = [release for release in done if release.id not in scored]
    if unscored:
        try:
            store.save(*score(ports, champion, unscored))
        except InterruptedError:
            return None
    latest, earlier = done[-1], done[:-1]
    if not earlier or _already_checked(ports, latest, champion):
        return None
    check = store.add(compare(ports, champion, latest, earlier))
    raise_drift(ports, check, latest)  # the cycle's own shift check of it shares its incident
    log.info(
        "watch: %s vs %d earlier release(s): drifted=%s", latest.id, len(earlier), check.drifted
    )
    return check


def score(
    ports: Ports, champion: CriticVersion, releases: list[ReleaseRecord]
) -> list[ReleaseScore]:
    """The champion's scores of ``releases``, on the executor (all their shards at once),
    kept as Parquet beside each release; returns their summaries."""
    frames = {release.id: history.samples(ports, release) for release in releases}
    shards = {
        release_id: shard_images(
            Path(champion.checkpoint),
            ports.settings.device,
            frame,
            SHARD_BATCHES,
            history.feature_folder(ports),
        )
        for release_id, frame in frames.items()
    }
    flat = [shard for parts in shards.values() for shard in parts]
    started = time.perf_counter()
    try:
        results = iter(ports.executor.map(score_shard, flat, ports.stop.is_set))
    finally:
        release_all()
    per_image = (time.perf_counter() - started) / max(1, sum(len(f) for f in frames.values()))
    rows = []
    for release in releases:
        frame = frames[release.id]
        scores = [row for _ in shards[release.id] for row in next(results)]
        scored = pd.DataFrame(
            {
                "prompt": frame["prompt"].to_numpy(),
                "quality": [q for q, _ in scores],
                "alignment": [a for _, a in scores],
            }
        )
        path = ports.workspace(release).scores(champion.store_version)
        path.parent.mkdir(parents=True, exist_ok=True)
        scored.to_parquet(path)
        rows.append(_summary(champion, release, scored, path, per_image * len(frame)))
    return rows


def compare(
    ports: Ports, champion: CriticVersion, latest: ReleaseRecord, earlier: list[ReleaseRecord]
) -> DriftCheck:
    """The generator shift of ``latest`` against ``earlier`` under the champion's scores,
    saved with its reports, published and logged to the champion's run."""
    scores = {
        row.release_id: pd.read_parquet(row.scores_path)
        for row in ports.store.rows(ReleaseScore, critic_version_id=champion.id)
    }
    reference = pd.concat([scores[r.id] for r in earlier], ignore_index=True)
    current = scores[latest.id]
    result = save_check(
        ports.drift,
        reference,
        current,
        shift_checks(reference, current, ports.settings.drift),
        ports.workspace(latest).drift(f"watch-v{champion.store_version}"),
        tags=["watch", f"generator:{latest.name}"],
        metadata={"release": latest.id, "critic_version": str(champion.store_version)},
    )
    result.summary["critic_version"] = champion.store_version
    publish_report(ports, "watch", latest, result)
    if champion.store_version:
        ports.critics.attach_files(
            champion.store_version, result.report_html.parent, f"drift/watch/{latest.name}"
        )
    return DriftCheck(
        kind="watch",
        release_id=latest.id,
        drifted=result.drifted,
        summary=result.summary,
        report_html=str(result.report_html),
        report_json=str(result.report_json),
    )


def _summary(
    champion: CriticVersion,
    release: ReleaseRecord,
    frame: pd.DataFrame,
    path: Path,
    seconds: float,
) -> ReleaseScore:
    quality, alignment = _mean_interval(frame["quality"]), _mean_interval(frame["alignment"])
    return ReleaseScore(
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
        seconds=seconds,
    )


def _already_checked(ports: Ports, release: ReleaseRecord, champion: CriticVersion) -> bool:
    return any(
        check.summary.get("critic_version") == champion.store_version
        for check in ports.store.rows(DriftCheck, release_id=release.id, kind="watch")
    )


def _mean(values: pd.Series) -> float | None:
    return None if values.isna().all() else float(values.mean())


def _std(values: pd.Series) -> float | None:
    return None if values.isna().all() else float(values.std(ddof=0))


def _mean_interval(values: pd.Series) -> Interval | None:
    """The mean's bootstrap interval (None with fewer than two values)."""
    values = values.dropna().to_numpy(dtype=float)
    return intervals.mean(values) if len(values) >= 2 else None
