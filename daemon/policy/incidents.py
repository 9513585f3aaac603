"""Drift checks to the outside: their reports published for the dashboards, their breaches
alerted as incidents (one per kind of breach, whichever check saw it: the release's cycle
and the later watch share them)."""

from __future__ import annotations

from adapters.alerts.base import Alert
from daemon.policy.drift import DriftResult, incident_topic
from daemon.ports import Ports
from daemon.state.tables import DriftCheck, ReleaseRecord

WHAT = {"critic": "Critic drift", "generator": "Generator shift", "watch": "Generator shift"}


def publish_report(ports: Ports, kind: str, release: ReleaseRecord, result: DriftResult) -> None:
    """Publish a drift check's report for the dashboards (a re-run replaces it)."""
    if result.report is None:
        return
    generators = {r.name for r in ports.store.releases()}
    version = result.summary.get("critic_version")
    name = f"{kind}:{release.id}" + (f":v{version}" if version else "")
    ports.drift.publish(name, result.report, generators)


def report_url(ports: Ports, check: DriftCheck) -> str:
    """Where people open ``check``'s report: the status API's page for it."""
    return f"{ports.settings.base_url}/reports/{check.id}"


def raise_drift(ports: Ports, check: DriftCheck, release: ReleaseRecord) -> None:
    """Alert the breaches of ``check`` (one incident per kind of breach, however many
    checks repeat it) and close the incidents its passing checks contradict."""
    alerter = ports.alerter
    for axis_check in check.summary.get("checks", []):
        topic, status = incident_topic(axis_check), axis_check["status"]
        if status == "alert":
            if axis_check["measure"] == "shift":
                opposite = "fell" if axis_check["direction"] == "rose" else "rose"
                alerter.clear(f"shift:{axis_check['axis']}:{opposite}", axis_check["words"])
            alerter.breach(
                topic,
                Alert(
                    title=f"{WHAT[check.kind]} on {release.name}: {axis_check['words']}",
                    summary=f"{axis_check['words']}; release {release.id}",
                    severity="warning",
                    kind="drift",
                    dedup_key=topic,
                    details={"release": release.id, "check": check.id, **axis_check},
                    links={"report": report_url(ports, check)},
                ),
            )
        elif status == "ok":
            closes = (
                [f"{topic}:rose", f"{topic}:fell"] if axis_check["measure"] == "shift" else [topic]
            )
            for closed in closes:
                alerter.clear(closed, axis_check["words"])
