"""Slack incoming webhooks, as a Block Kit message.

The webhook URL is the credential: it comes from the environment (``webhook_env``) unless
an ``endpoint`` is given (a proxy or a test server), and is never logged. Slack answers
``200 ok``; ``429`` carries ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from adapters.alerts.base import Alert
from adapters.http import AdapterError, HttpClient, UsesHttp, secret_from_env

EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":x:",
         "critical": ":rotating_light:"}  # fmt: skip


def slack_message(alert: Alert) -> dict[str, Any]:
    """The Block Kit payload; ``text`` is the notification fallback."""
    state = ":white_check_mark: resolved" if alert.resolved else EMOJI[alert.severity]
    fields = [
        {"type": "mrkdwn", "text": f"*{key}*\n{value}"[:2000]}
        for key, value in list(alert.details.items())[:10]
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{state} {alert.summary}"[:3000]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if alert.links:
        links = " · ".join(f"<{url}|{label}>" for label, url in alert.links.items())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": links[:3000]}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{alert.kind} · {alert.source} · {alert.created_at:%Y-%m-%d %H:%M} UTC"
                    f" · `{alert.dedup_key}`",
                }
            ],
        }
    )
    return {"text": f"{alert.title}: {alert.summary}"[:3000], "blocks": blocks}


class SlackChannel(UsesHttp):
    def __init__(
        self,
        endpoint: str | None = None,
        webhook_env: str = "SLACK_WEBHOOK_URL",
        name: str = "slack",
        http: dict | None = None,
    ) -> None:
        url = endpoint or secret_from_env(webhook_env, "the Slack channel")
        self.name = name
        self.client = HttpClient.create(url, http, secret_url=True)

    def send(self, alert: Alert) -> None:
        response = self.client.request("POST", "", json=slack_message(alert))
        if response.text.strip() not in ("ok", ""):
            raise AdapterError(f"Slack refused the message: {response.text[:200]!r}")
