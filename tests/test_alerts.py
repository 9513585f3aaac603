import hmac
import json
import logging
import time

import pytest
from werkzeug import Response

from adapters import create_alert_channel
from adapters.alerts.base import Alert
from adapters.alerts.webhook import signature
from adapters.http import AdapterError

FAST = {"retry": {"attempts": 3, "backoff_s": 0.01}, "timeout_s": 5}
ALERT = Alert(
    title="Critic drift on quality",
    summary="challenger v7 vs champion v6: rank correlation 0.62 < 0.8",
    severity="critical",
    kind="drift",
    source="eliq-daemon@host",
    dedup_key="drift:quality:v7",
    details={"release": "lab/gen@abc", "srcc": 0.62},
    links={"report": "http://mlflow.local/runs/1"},
)


def test_log_channel_writes_json_lines(tmp_path, caplog):
    channel = create_alert_channel("log", path=tmp_path / "alerts.jsonl")
    with caplog.at_level(logging.INFO, logger="eliq.alerts"):
        channel.send(ALERT)
        channel.send(ALERT.model_copy(update={"resolved": True}))
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [x["resolved"] for x in lines] == [False, True]
    assert lines[0]["dedup_key"] == "drift:quality:v7"
    assert "Critic drift on quality" in caplog.text


def test_slack_block_kit_message(httpserver, monkeypatch, caplog):
    received = []
    httpserver.expect_request("/services/T0/B0/secretpath", method="POST").respond_with_handler(
        lambda r: received.append(r.get_json()) or Response("ok")
    )
    monkeypatch.setenv("SLACK_WEBHOOK_URL", httpserver.url_for("/services/T0/B0/secretpath"))
    create_alert_channel("slack", http=FAST).send(ALERT)
    (message,) = received
    assert message["text"].startswith("Critic drift on quality")
    header, summary, fields, links, context = message["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": ALERT.title}}
    assert summary["type"] == "section" and summary["text"]["type"] == "mrkdwn"
    assert ":rotating_light:" in summary["text"]["text"]
    assert {"type": "mrkdwn", "text": "*srcc*\n0.62"} in fields["fields"]
    assert links["text"]["text"] == "<http://mlflow.local/runs/1|report>"
    assert context["type"] == "context" and "drift:quality:v7" in context["elements"][0]["text"]
    assert len(header["text"]["text"]) <= 150


def test_slack_retries_429_and_keeps_the_webhook_out_of_errors(httpserver, caplog):
    url = httpserver.url_for("/services/T0/B0/secretpath")
    httpserver.expect_ordered_request("/services/T0/B0/secretpath").respond_with_response(
        Response("rate_limited", status=429, headers={"Retry-After": "0"})
    )
    httpserver.expect_ordered_request("/services/T0/B0/secretpath").respond_with_data("ok")
    create_alert_channel("slack", endpoint=url, http=FAST).send(ALERT)
    httpserver.expect_request("/services/T0/B0/secretpath").respond_with_response(
        Response("invalid_payload", status=400)
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(AdapterError) as error:
        create_alert_channel("slack", endpoint=url, http=FAST).send(ALERT)
    assert "invalid_payload" in str(error.value)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    assert ours and "secretpath" not in str(error.value)
    assert not any("secretpath" in message for message in ours)  # werkzeug is the receiver


def test_webhook_signature_verifies_with_the_shared_secret(httpserver, monkeypatch):
    monkeypatch.setenv("ELIQ_WEBHOOK_SECRET", "s3cret")
    received = []
    httpserver.expect_request("/hooks/eliq", method="POST").respond_with_handler(
        lambda r: received.append(r) or Response("", status=204)
    )
    create_alert_channel("webhook", endpoint=httpserver.url_for("/hooks/eliq"), http=FAST).send(
        ALERT
    )
    (request,) = received
    body, stamp = request.get_data(), request.headers["X-Eliq-Timestamp"]
    expected = signature("s3cret", stamp, body)
    assert hmac.compare_digest(request.headers["X-Eliq-Signature"], expected)
    assert signature("wrong", stamp, body) != expected
    assert abs(int(stamp) - time.time()) < 60
    payload = json.loads(body)
    assert payload["title"] == ALERT.title and payload["dedup_key"] == ALERT.dedup_key
    assert request.headers["Content-Type"] == "application/json"


def test_pagerduty_trigger_and_resolve_events(httpserver, monkeypatch):
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "R0UT1NGKEY0123456789012345678901")
    events = []

    def enqueue(request):
        events.append(request.get_json())
        key = events[-1]["dedup_key"]
        return Response(
            json.dumps({"status": "success", "message": "Event processed", "dedup_key": key}),
            status=202,
            content_type="application/json",
        )

    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_handler(enqueue)
    channel = create_alert_channel("pagerduty", endpoint=httpserver.url_for(""), http=FAST)
    channel.send(ALERT)
    channel.send(ALERT.model_copy(update={"resolved": True}))
    trigger, resolve = events
    assert trigger["routing_key"] == "R0UT1NGKEY0123456789012345678901"
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == "drift:quality:v7"
    payload = trigger["payload"]
    assert payload["severity"] in {"critical", "error", "warning", "info"}
    assert payload["summary"].startswith("Critic drift") and len(payload["summary"]) <= 1024
    assert payload["source"] == "eliq-daemon@host" and payload["class"] == "drift"
    assert payload["custom_details"] == {"release": "lab/gen@abc", "srcc": 0.62}
    assert trigger["links"] == [{"href": "http://mlflow.local/runs/1", "text": "report"}]
    assert resolve == {
        "routing_key": "R0UT1NGKEY0123456789012345678901",
        "event_action": "resolve",
        "dedup_key": "drift:quality:v7",
    }


def test_pagerduty_invalid_event_is_not_retried(httpserver, monkeypatch):
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "key")
    httpserver.expect_oneshot_request("/v2/enqueue").respond_with_json(
        {"status": "invalid event", "message": "Event object is invalid"}, status=400
    )
    channel = create_alert_channel("pagerduty", endpoint=httpserver.url_for(""), http=FAST)
    with pytest.raises(AdapterError, match="400"):
        channel.send(ALERT)
    assert len(httpserver.log) == 1


def test_channels_refuse_to_start_without_their_secret(monkeypatch):
    for variable in ("SLACK_WEBHOOK_URL", "ELIQ_WEBHOOK_SECRET", "PAGERDUTY_ROUTING_KEY"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ValueError, match="SLACK_WEBHOOK_URL"):
        create_alert_channel("slack")
    with pytest.raises(ValueError, match="ELIQ_WEBHOOK_SECRET"):
        create_alert_channel("webhook", endpoint="http://127.0.0.1:1/hook")
    with pytest.raises(ValueError, match="PAGERDUTY_ROUTING_KEY"):
        create_alert_channel("pagerduty")
