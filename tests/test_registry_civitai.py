import json
import time

import pytest
from werkzeug import Response

from adapters import create_registry
from adapters.http import MalformedResponse


class FakeCivitai:
    """``/api/v1/models`` shaped like Civitai's: ``items`` newest model first, each with its
    ``modelVersions``; ``metadata.nextCursor`` pagination; fields eliq does not read."""

    def __init__(self):
        self.models, self.requests, self.failures = [], [], []

    def add(self, model_id, versions, safe=True):
        self.models.insert(
            0,
            {  # Newest first
                "id": model_id,
                "name": f"model {model_id}",
                "type": "Checkpoint",
                "nsfw": False,
                "tags": ["anime"],
                "creator": {"username": "someone", "image": None},
                "stats": {"downloadCount": 5, "rating": 4.9},
                "modelVersions": [
                    {
                        "id": vid,
                        "modelId": model_id,
                        "name": f"v{vid}",
                        "createdAt": f"2026-11-{day:02d}T10:00:00.000Z",
                        "publishedAt": f"2026-11-{day:02d}T12:00:00.000Z",
                        "baseModel": "SDXL 1.0",
                        "trainedWords": [],
                        "files": [
                            {
                                "name": f"m{vid}." + ("safetensors" if safe else "ckpt"),
                                "type": "Model",
                                "metadata": {"format": "SafeTensor" if safe else "PickleTensor"},
                                "downloadUrl": f"https://civitai.example/api/download/models/{vid}",
                            }
                        ],
                    }
                    for vid, day in versions
                ],
            },
        )

    def __call__(self, request):
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            return failure if isinstance(failure, Response) else failure(request)
        limit = int(request.args.get("limit", 100))
        start = int(request.args.get("cursor", 0))
        page = self.models[start : start + limit]
        following = start + limit if start + limit < len(self.models) else None
        metadata = {"nextCursor": str(following)} if following else {}
        return Response(
            json.dumps({"items": page, "metadata": metadata}), content_type="application/json"
        )


@pytest.fixture
def civitai(httpserver):
    fake = FakeCivitai()
    httpserver.expect_request("/api/v1/models").respond_with_handler(fake)
    fake.url = httpserver.url_for("").rstrip("/")
    return fake


def registry(fake, **settings):
    return create_registry(
        "civitai", endpoint=fake.url, page_size=2, lookback_days=3650,
        http={"retry": {"attempts": 2, "backoff_s": 0.01}}, **settings,
    )  # fmt: skip


def test_each_model_version_is_a_release_across_pages_and_restarts(civitai):
    civitai.add(1, [(11, 1)])
    civitai.add(2, [(21, 2), (22, 3)])
    civitai.add(3, [(31, 4)], safe=False)
    first, cursor = registry(civitai, base_models=["SDXL 1.0"]).poll(None)
    assert [r.id for r in first] == ["civitai:1@11", "civitai:2@21", "civitai:2@22", "civitai:3@31"]
    assert first[0].loader.ref.endswith("/models/11") and first[0].loader.options["single_file"]
    assert first[3].metadata["pickle_only"] and not first[0].metadata["pickle_only"]
    query = civitai.requests[0].args
    assert query["sort"] == "Newest" and query["types"] == "Checkpoint"
    assert query["baseModels"] == "SDXL 1.0"
    assert any(r.args.get("cursor") == "2" for r in civitai.requests)

    civitai.add(4, [(41, 5)])
    second, cursor = registry(civitai).poll(json.loads(json.dumps(cursor)))
    assert [r.id for r in second] == ["civitai:4@41"]
    assert registry(civitai).poll(cursor)[0] == []


def test_malformed_pages_raise(civitai):
    civitai.failures.append(Response('{"items": {}}', content_type="application/json"))
    with pytest.raises(MalformedResponse, match="items"):
        registry(civitai).poll(None)
    civitai.failures.append(Response('{"items": [{"id": "x"}]}', content_type="application/json"))
    with pytest.raises(MalformedResponse, match="not understood"):
        registry(civitai).poll(None)


@pytest.mark.parametrize(
    "failure",
    [
        Response("slow down", status=429, headers={"Retry-After": "0"}),
        Response("bad gateway", status=502),
    ],
)
def test_rate_limits_and_server_errors_are_retried(civitai, failure):
    civitai.add(1, [(11, 1)])
    civitai.failures.append(failure)
    releases, _ = registry(civitai).poll(None)
    assert [r.id for r in releases] == ["civitai:1@11"]
    assert len(civitai.requests) == 2


def test_a_truncated_page_raises(civitai):
    civitai.failures.append(Response('{"items": [{"id": 1, "na', content_type="application/json"))
    with pytest.raises(MalformedResponse, match="not JSON"):
        registry(civitai).poll(None)


def test_a_timeout_is_retried(civitai):
    civitai.add(1, [(11, 1)])

    def late(request):
        time.sleep(4.0)  # the client gives up first (at 1.5 s, ample when loaded), retries
        return Response("[]")

    civitai.failures.append(late)
    made = create_registry(
        "civitai", endpoint=civitai.url, lookback_days=3650,
        http={"timeout_s": 1.5, "retry": {"attempts": 4, "backoff_s": 0.2}},
    )  # fmt: skip
    assert [r.id for r in made.poll(None)[0]] == ["civitai:1@11"]
