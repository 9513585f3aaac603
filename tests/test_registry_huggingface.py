import json
import logging

import pytest

from adapters import create_registry
from adapters.http import AdapterError, MalformedResponse
from tests.fake_hub import FakeHub, rate_limited, server_error, slow, truncated_json


@pytest.fixture
def hub(httpserver):
    fake = FakeHub(httpserver.url_for("").rstrip("/"))
    httpserver.expect_request("/api/models").respond_with_handler(fake)
    return fake


def registry(hub, waits=None, **settings):
    made = create_registry(
        "huggingface",
        endpoint=hub.base_url,
        page_size=3,
        lookback_days=3650,
        http={"retry": {"attempts": 4, "backoff_s": 0.5}, "timeout_s": 5},
        **settings,
    )
    if waits is not None:
        made.client.sleep = waits.append
    return made


def test_first_poll_follows_pagination_and_returns_releases_oldest_first(hub):
    for minute in range(7):
        hub.add(f"lab/gen-{minute}", minute, sha=f"{minute:040d}")
    releases, cursor = registry(hub).poll(None)
    assert [r.name for r in releases] == [f"lab/gen-{m}" for m in range(7)]
    assert releases[0].id == "lab/gen-0@" + "0" * 40
    assert releases[0].loader.kind == "diffusers" and releases[0].loader.revision == "0" * 40
    assert releases[0].metadata["license"] == "openrail"
    created_pages = [r for r in hub.requests if r.args.get("sort") == "createdAt"]
    assert len(created_pages) == 3  # 7 models, 3 per page
    first = created_pages[0].args
    assert first["pipeline_tag"] == "text-to-image" and first["direction"] == "-1"
    assert "sha" in first.getlist("expand")
    assert json.loads(json.dumps(cursor)) == cursor


def test_a_restart_between_polls_neither_repeats_nor_loses_a_release(hub):
    hub.add("lab/old", 0, sha="1" * 40)
    hub.add("lab/tie-a", 5)
    hub.add("lab/tie-b", 5)
    first, cursor = registry(hub).poll(None)
    assert {r.name for r in first} == {"lab/old", "lab/tie-a", "lab/tie-b"}
    stored = json.dumps(cursor)  # what the daemon keeps in its database

    hub.add("lab/tie-c", 5)  # same timestamp as the mark, not seen yet
    hub.add("lab/new", 9)
    hub.new_revision("lab/old", "2" * 40, modified_minutes=12)
    restarted = registry(hub)  # a new process: nothing but the stored cursor survives
    second, cursor = restarted.poll(json.loads(stored))
    assert [r.id for r in second] == [
        "lab/tie-c@" + "a" * 40,
        "lab/new@" + "a" * 40,
        "lab/old@" + "2" * 40,
    ]
    third, _ = registry(hub).poll(json.loads(json.dumps(cursor)))
    assert third == []


def test_include_exclude_and_filters(hub):
    hub.add("lab/keep", 1)
    hub.add("lab/skip-lora", 2)
    hub.add("other/ignored", 3)
    releases, _ = registry(hub, include=["lab/keep", "lab/skip-lora"], exclude=["*-lora"]).poll(
        None
    )
    assert [r.name for r in releases] == ["lab/keep"]
    registry(hub, author="lab", tags=["sdxl"], library="diffusers").poll(None)
    query = hub.requests[-1].args
    assert query["author"] == "lab" and query.getlist("filter") == ["sdxl", "diffusers"]


def test_429_waits_what_the_ratelimit_header_says(hub):
    hub.add("lab/a", 1)
    hub.failures.extend([rate_limited(7), server_error])
    waits = []
    releases, _ = registry(hub, waits).poll(None)
    assert [r.name for r in releases] == ["lab/a"]
    assert waits[0] == 7  # from RateLimit t=7
    assert 0.25 <= waits[1] <= 1.0  # 5xx: backoff with jitter, second attempt


def test_retries_give_up_with_a_clear_error(hub):
    hub.add("lab/a", 1)
    hub.failures.extend([server_error] * 4)
    with pytest.raises(AdapterError, match="500 server error after 4 attempts"):
        registry(hub, []).poll(None)


def test_a_timeout_is_retried(hub):
    hub.add("lab/a", 1)
    hub.failures.append(slow(4.0))
    made = create_registry(
        "huggingface",
        endpoint=hub.base_url,
        lookback_days=3650,
        http={"timeout_s": 1.5, "retry": {"attempts": 4, "backoff_s": 0.2}},
    )
    releases, _ = made.poll(None)
    assert [r.name for r in releases] == ["lab/a"]


def test_malformed_bodies_raise_and_leave_the_cursor_alone(hub):
    hub.add("lab/a", 1)
    _, cursor = registry(hub).poll(None)
    hub.add("lab/b", 2)
    hub.failures.append(truncated_json)
    with pytest.raises(MalformedResponse, match="not JSON"):
        registry(hub).poll(cursor)
    hub.failures.append(lambda: __import__("werkzeug").Response('{"error": "x"}'))
    with pytest.raises(MalformedResponse, match="not a list"):
        registry(hub).poll(cursor)
    releases, _ = registry(hub).poll(cursor)  # nothing was lost
    assert [r.name for r in releases] == ["lab/b"]


def test_the_token_comes_from_the_environment_and_stays_out_of_logs(hub, monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    hub.add("lab/a", 1)
    hub.failures.append(server_error)
    with caplog.at_level(logging.DEBUG):
        registry(hub, []).poll(None)
    assert hub.requests[0].headers["Authorization"] == "Bearer hf_secret_value"
    assert "hf_secret_value" not in caplog.text


def test_a_model_id_that_is_a_path_is_refused(hub):
    hub.add("../../etc", 1)
    with pytest.raises(MalformedResponse, match="not understood"):
        registry(hub).poll(None)


def test_releases_load_from_the_hub(hub):
    hub.add("lab/gen", 1, sha="1" * 40)
    (release,) = registry(hub).poll(None)[0]
    assert release.loader.options == {"hub": True}
