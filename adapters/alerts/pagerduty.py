"""PagerDuty Events API v2: ``POST /v2/enqueue``.

An alert triggers an incident keyed by its ``dedup_key`` (repeats merge into it); a resolved
alert resolves it. The integration's routing key comes from ``routing_key_env``. PagerDuty
answers ``202 {"status": "success", "dedup_key": ...}``; ``400`` means the event is invalid
(not retried); ``429`` and ``5xx`` are retried.
"""

from __future__ import annotations

from typing import Any

from adapters.alerts.base import Alert
from adapters.http import HttpClient, MalformedResponse, UsesHttp, secret_from_env

# PagerDuty's severities are critical, error, warning and info, the same as eliq's
SUMMARY_LIMIT = 1024


def pagerduty_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if alert.resolved else "trigger",
        "dedup_key": alert.dedup_key,
    }
    if alert.resolved:
        return event
    event["payload"] = {
        "summary": f"{alert.title}: {alert.summary}"[:SUMMARY_LIMIT],
        "source": alert.source,
        "severity": alert.severity,
        "timestamp": alert.created_at.isoformat(),
        "component": "critic",
        "group": "eliq",
        "class": alert.kind,
        "custom_details": alert.details,
    }
    if alert.links:
        event["links"] = [{"href": url, "text": label} for label, url in alert.links.items()]
    return event


class PagerDutyChannel(UsesHttp):
    def __init__(
        self,
        endpoint: str = "https://events.pagerduty.com",
        routing_key_env: str = "PAGERDUTY_ROUTING_KEY",
        name: str = "pagerduty",
        http: dict | None = None,
    ) -> None:
        self.name = name
        self._routing_key = secret_from_env(routing_key_env, "the PagerDuty channel")
        self.client = HttpClient.create(endpoint, http)

    def send(self, alert: Alert) -> None:
        body, _ = self.client.json(
            "POST", "/v2/enqueue", json=pagerduty_event(alert, self._routing_key)
        )
        if not isinstance(body, dict) or body.get("status") != "success":
            raise MalformedResponse(f"PagerDuty did not accept the event: {body!r:.200}")
