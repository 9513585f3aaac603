"""Drift decisions: effect sizes with intervals, inconclusive on small samples, and one
incident (one alert) for repeated breaches of one kind."""

import json

import numpy as np
import pandas as pd

from adapters.alerts.base import Alert
from daemon.composition import build_channels, build_cycle
from daemon.policy.alerting import Alerter
from daemon.policy.drift import (
    DriftSettings,
    agreement_checks,
    incident_topic,
    save_check,
    shift_checks,
)
from daemon.policy.incidents import raise_drift
from daemon.settings import AlertSpec, DaemonSettings
from daemon.state.database import make_engine, migrate
from daemon.state.store import Store
from daemon.state.tables import DriftCheck, Incident, ReleaseRecord, utcnow
from dashboards.evidently_reports import EvidentlyDriftSink

SETTINGS = DriftSettings()


def _release(rng, n, shift=0.0, prompts=None):
    prompts = prompts if prompts is not None else [f"p{i}" for i in range(n)]
    return pd.DataFrame(
        {
            "prompt": prompts,
            "quality": rng.normal(-8 + shift, 1.0, n),
            "alignment": rng.normal(0.3, 0.05, n),
        }
    )


def test_a_large_shift_alerts_with_its_direction_size_and_n():
    rng = np.random.default_rng(0)
    earlier, new = _release(rng, 96), _release(rng, 24, shift=-1.0)
    quality, alignment = shift_checks(earlier, new, SETTINGS)
    assert quality.status == "alert" and quality.direction == "fell"
    assert quality.words.startswith("quality fell by ")
    assert "n=24 vs 96" in quality.words and "tolerance" in quality.words
    assert quality.interval.high < -quality.tolerance
    assert alignment.status == "ok" and "no shift beyond" in alignment.words


def test_a_handful_of_images_is_inconclusive_and_never_alerts(tmp_path):
    rng = np.random.default_rng(1)
    earlier, new = _release(rng, 6), _release(rng, 6, shift=-5.0)
    checks = shift_checks(earlier, new, SETTINGS)
    assert [c.status for c in checks] == ["inconclusive", "inconclusive"]
    assert "inconclusive (6 shared prompts" in checks[0].words
    same = _release(rng, 6)
    reversed_ = same.assign(quality=-same["quality"], alignment=-same["alignment"])
    agreement = agreement_checks(same, reversed_, SETTINGS)
    assert [c.status for c in agreement] == ["inconclusive", "inconclusive"]
    assert "inconclusive (n=6" in agreement[0].words
    result = save_check(
        EvidentlyDriftSink(tmp_path / "evidently"), same, reversed_, agreement, tmp_path / "check"
    )
    assert not result.drifted and result.summary["breaches"] == []
    saved = json.loads(result.report_json.read_text())["summary"]["checks"]
    assert [c["status"] for c in saved] == ["inconclusive", "inconclusive"]


def test_pairing_by_prompt_detects_a_shift_that_unpaired_scores_hide():
    """Releases sampled on one prompt suite: the prompt explains most of a score."""
    rng = np.random.default_rng(2)
    content = rng.normal(-8, 2.0, 24)
    earlier = pd.DataFrame({"prompt": [f"p{i}" for i in range(24)], "quality": content})
    new = earlier.assign(quality=content + 0.9 + rng.normal(0, 0.2, 24))
    (paired,) = [c for c in shift_checks(earlier, new, SETTINGS) if c.axis == "quality"]
    assert paired.status == "alert" and "paired over 24 prompts" in paired.words
    unpaired_new = new.assign(prompt=[f"q{i}" for i in range(24)])
    (unpaired,) = [c for c in shift_checks(earlier, unpaired_new, SETTINGS) if c.axis == "quality"]
    assert unpaired.status == "ok"


def test_critic_drift_compares_rankings_only():
    rng = np.random.default_rng(3)
    parent = _release(rng, 32)
    rescaled = parent.assign(quality=3 * parent["quality"] + 10)  # another scale, same order
    assert {c.status for c in agreement_checks(parent, rescaled, SETTINGS)} == {"ok"}
    shuffled = parent.assign(quality=rng.permutation(parent["quality"].to_numpy()))
    quality = agreement_checks(parent, shuffled, SETTINGS)[0]
    assert quality.status == "alert" and "quality ranking changed: Spearman" in quality.words
    assert incident_topic(quality.to_json()) == "agreement:quality"


def test_repeated_breaches_are_one_incident_alerted_once(tmp_path):
    settings = DaemonSettings(data_dir=tmp_path, alerts=[AlertSpec(kind="log")])
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    migrate(engine)
    store = Store(engine)
    alerter = Alerter(store, build_channels(settings))

    def breach(cycle):
        alert = Alert(
            title=f"Critic drift on gen-v{cycle}",
            summary="quality ranking changed: Spearman 0.41 [0.12, 0.66] < 0.8 (n=32 images)",
            kind="drift",
            dedup_key="agreement:quality",
        )
        return alerter.breach("agreement:quality", alert)

    assert [breach(cycle) for cycle in range(3)] == [True, False, False]
    (incident,) = store.rows(Incident, topic="agreement:quality")
    assert incident.closed_at is None and incident.breaches == 3
    alerted = [json.loads(line) for line in (tmp_path / "alerts.jsonl").open()]
    assert [a["title"] for a in alerted] == ["Critic drift on gen-v0"]

    alerter.clear("agreement:quality", "quality ranking kept: Spearman 0.93")
    alerter.clear("agreement:quality", "quality ranking kept: Spearman 0.95")  # nothing open
    assert breach(3) is True  # after a passing check, a breach is news again
    sent = [json.loads(line) for line in (tmp_path / "alerts.jsonl").open()]
    assert [(a["title"], a["resolved"]) for a in sent] == [
        ("Critic drift on gen-v0", False),
        ("Resolved: agreement:quality", True),
        ("Critic drift on gen-v3", False),
    ]
    assert sent[1]["dedup_key"] == sent[0]["dedup_key"]  # the resolve closes the same incident
    assert sent[2]["dedup_key"] != sent[0]["dedup_key"]


def test_one_shift_seen_by_the_cycle_and_by_the_watch_is_one_alert(tmp_path):
    settings = DaemonSettings(
        data_dir=tmp_path,
        registries=[],
        alerts=[AlertSpec(kind="log")],
        public_url="https://eliq.example",
    )
    cycle = build_cycle(settings)
    rng = np.random.default_rng(4)
    earlier, new = _release(rng, 96), _release(rng, 24, shift=-1.0)
    release = ReleaseRecord(
        id="lab/gen-v2",
        registry_name="team",
        source="local",
        name="gen",
        appeared_at=utcnow(),
        sequence=2,
        loader={},
    )
    cycle.ports.store.save(release)
    for kind in ("generator", "watch"):  # the challenger's view at its cycle, the champion's later
        result = save_check(
            EvidentlyDriftSink(tmp_path / "evidently"),
            earlier,
            new,
            shift_checks(earlier, new, SETTINGS),
            tmp_path / kind,
        )
        check = cycle.ports.store.add(
            DriftCheck(
                kind=kind, release_id=release.id, drifted=result.drifted, summary=result.summary
            )
        )
        raise_drift(cycle.ports, check, release)
    (alert,) = [json.loads(line) for line in (tmp_path / "alerts.jsonl").open()]
    assert alert["title"].startswith("Generator shift on gen: quality fell by ")
    assert alert["links"]["report"].startswith("https://eliq.example/reports/")
    assert "n=24 vs 96" in alert["summary"]
    (incident,) = cycle.ports.store.rows(Incident, topic="shift:quality:fell")
    assert incident.breaches == 2
