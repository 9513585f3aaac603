"""Read-only views of the daemon's tables, shaped for the status API, its page and
``/metrics``: plain dictionaries, computed per request from the database (the daemon's
state lives there, not in this process, so any replica serves the same answers)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd
from sqlmodel import func, select

from daemon.state.store import Store
from daemon.state.tables import (
    AlertRecord,
    CriticVersion,
    DriftCheck,
    EvaluationRecord,
    JobRun,
    RegistryCursor,
    ReleaseRecord,
    ReleaseScore,
)
from eliq.compare import compare_scores, describe


def leaderboard(store: Store) -> list[dict[str, Any]]:
    """Every release the current champion has scored, best quality first, with its rank."""
    champion = store.champion()
    if champion is None:
        return []
    releases = {r.id: r for r in store.releases()}
    rows = [
        {
            "rank": 0,
            "generator": releases[s.release_id].name,
            "release": s.release_id,
            "appeared_at": releases[s.release_id].appeared_at,
            "discovered_at": releases[s.release_id].discovered_at,
            "images": s.images,
            "quality": s.quality_mean,
            "quality_std": s.quality_std,
            "alignment": s.alignment_mean,
            "alignment_std": s.alignment_std,
            "quality_low": s.quality_low,
            "quality_high": s.quality_high,
            "alignment_low": s.alignment_low,
            "alignment_high": s.alignment_high,
            "critic_version": champion.store_version,
        }
        for s in store.rows(ReleaseScore, critic_version_id=champion.id)
    ]
    rows.sort(key=lambda row: -row["quality"])
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def compare_releases(store: Store, a: str, b: str) -> dict[str, Any]:
    """Release ``b`` against release ``a`` under the current champion: per axis, the
    difference of mean scores with its interval (paired by prompt where they share prompts)
    and the sentence the page shows. KeyError when the champion has not scored one."""
    champion = store.champion()
    if champion is None:
        raise KeyError("no champion has scored any release yet")
    paths = {
        s.release_id: s.scores_path for s in store.rows(ReleaseScore, critic_version_id=champion.id)
    }
    missing = [r for r in (a, b) if r not in paths]
    if missing:
        raise KeyError(f"critic v{champion.store_version} has not scored {', '.join(missing)}")
    comparison = compare_scores(pd.read_parquet(paths[a]), pd.read_parquet(paths[b]))
    return {
        "a": a,
        "b": b,
        "critic_version": champion.store_version,
        "text": describe(comparison, f"release {a}", f"release {b}"),
        **{axis: None if c is None else c.to_json() for axis, c in comparison.items()},
    }


def leaderboard_history(store: Store) -> list[dict[str, Any]]:
    """Every release's mean scores under every critic version that has scored it (each
    champion in turn, via the periodic check), in version order: the ranking over time."""
    releases = {r.id: r for r in store.releases()}
    versions = {v.id: v for v in store.critic_versions()}
    rows = [
        {
            "critic_version": versions[s.critic_version_id].store_version,
            "decided_at": versions[s.critic_version_id].decided_at,
            "generator": releases[s.release_id].name,
            "release": s.release_id,
            "quality": s.quality_mean,
            "alignment": s.alignment_mean,
        }
        for s in store.rows(ReleaseScore)
    ]
    return sorted(rows, key=lambda row: (int(row["critic_version"] or 0), row["release"]))


def critic_versions(store: Store) -> list[dict[str, Any]]:
    """Critic versions, oldest first, each with its gate and its held-out accuracies."""
    accuracy: dict[int, dict[str, float | None]] = defaultdict(dict)
    for row in store.rows(EvaluationRecord):
        accuracy[row.critic_version_id][f"{row.role}_{row.scope}"] = row.accuracy
    return [
        v.model_dump(mode="json") | {"accuracy": accuracy.get(v.id, {})}
        for v in store.critic_versions()
    ]


def drift_checks(store: Store, kind: str | None = None) -> list[DriftCheck]:
    """Drift checks, oldest first (optionally of one kind)."""
    with store.session() as session:
        query = select(DriftCheck).order_by(DriftCheck.created_at, DriftCheck.id)
        if kind is not None:
            query = query.where(DriftCheck.kind == kind)
        return list(session.exec(query).all())


def release_steps(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Per release, each run of its steps, oldest first: which step, where its work ran
    (``executor``, ``workers``), when, and whether it completed."""
    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with store.session() as session:
        for run in session.exec(select(JobRun).order_by(JobRun.started_at, JobRun.id)).all():
            step, _, release = run.job.partition(":")
            if release:
                steps[release].append(
                    {"step": step}
                    | run.model_dump(
                        mode="json",
                        include={"executor", "workers", "started_at", "finished_at", "ok"},
                    )
                )
    return dict(steps)


def step_durations(store: Store) -> dict[str, dict[str, float]]:
    """Per step (``retune``, ``watch``, ...): finished runs, their total seconds, failures."""
    stats: dict[str, dict[str, float]] = defaultdict(
        lambda: {"count": 0, "seconds": 0.0, "failed": 0}
    )
    with store.session() as session:
        for run in session.exec(select(JobRun).where(JobRun.finished_at.is_not(None))).all():
            entry = stats[run.job.split(":", 1)[0]]
            entry["count"] += 1
            entry["seconds"] += (run.finished_at - run.started_at).total_seconds()
            entry["failed"] += 0 if run.ok else 1
    return dict(stats)


def counts(store: Store) -> dict[str, Any]:
    """Releases per state, critic versions per status, alerts per channel and outcome, last
    poll per registry, and the images scored with the seconds that took (where timed)."""
    with store.session() as session:
        states = dict(
            session.exec(
                select(ReleaseRecord.state, func.count()).group_by(ReleaseRecord.state)
            ).all()
        )
        statuses = dict(
            session.exec(
                select(CriticVersion.status, func.count()).group_by(CriticVersion.status)
            ).all()
        )
        alerts = [
            {"channel": channel, "delivered": delivered, "count": count}
            for channel, delivered, count in session.exec(
                select(AlertRecord.channel, AlertRecord.delivered, func.count()).group_by(
                    AlertRecord.channel, AlertRecord.delivered
                )
            ).all()
        ]
        polls = {c.registry_name: c.polled_at for c in session.exec(select(RegistryCursor)).all()}
        timed = ReleaseScore.seconds.is_not(None)
        images, seconds = session.exec(
            select(func.sum(ReleaseScore.images), func.sum(ReleaseScore.seconds)).where(timed)
        ).one()
    return {
        "states": states,
        "statuses": statuses,
        "alerts": alerts,
        "polls": polls,
        "scoring": {"images": images or 0, "seconds": seconds or 0.0},
    }
