"""A generic JSON webhook, signed so the receiver can trust it.

The body is the alert as JSON. Headers: ``X-Eliq-Timestamp`` (Unix seconds) and
``X-Eliq-Signature: sha256=<hex>``, the HMAC-SHA256 under the shared secret of
``"<timestamp>.<body>"``. A receiver recomputes it with :func:`signature` and rejects a
mismatch or an old timestamp (replays). The secret comes from ``secret_env``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from adapters.alerts.base import Alert
from adapters.http import HttpClient, UsesHttp, secret_from_env


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookChannel(UsesHttp):
    def __init__(
        self,
        endpoint: str,
        secret_env: str = "ELIQ_WEBHOOK_SECRET",
        name: str = "webhook",
        http: dict | None = None,
    ) -> None:
        self.name = name
        self._secret = secret_from_env(secret_env, "the webhook channel")
        self.client = HttpClient.create(endpoint, http)

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.model_dump(mode="json"), sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Eliq-Timestamp": timestamp,
            "X-Eliq-Signature": signature(self._secret, timestamp, body),
        }
        self.client.request("POST", "", content=body, headers=headers)
