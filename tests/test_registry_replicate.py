import json
import time

import pytest
from werkzeug import Response

from adapters import create_registry
from adapters.http import MalformedResponse


class FakeReplicate:
    """The collection and versions endpoints, shaped like Replicate's (``next`` links,
    versions newest first, fields eliq does not read)."""

    def __init__(self, base):
        self.base = base
        self.versions = {"acme/painter": [], "acme/sketcher": []}
        self.requests = []
        self.failures = []  # answers (or late answers) given before the real ones

    def failed(self, request):
        if not self.failures:
            return None
        failure = self.failures.pop(0)  # None: answer this one normally
        if failure is None or isinstance(failure, Response):
            return failure
        return failure(request)

    def release(self, slug, version, day):
        self.versions[slug].insert(
            0,
            {
                "id": version,
                "created_at": f"2026-11-{day:02d}T08:00:00.000000Z",
                "cog_version": "0.9.4",
                "openapi_schema": {"info": {"title": "Cog"}},
            },
        )

    def collection(self, request):
        self.requests.append(request)
        if (failure := self.failed(request)) is not None:
            return failure
        models = [
            {"url": f"https://replicate.com/{slug}", "owner": slug.split("/")[0],
             "name": slug.split("/")[1], "description": "paints", "visibility": "public",
             "run_count": 42, "license_url": None, "cover_image_url": None,
             "latest_version": self.versions[slug][0] if self.versions[slug] else None}
            for slug in self.versions
        ]  # fmt: skip
        return Response(
            json.dumps({"name": "Text to image", "slug": "text-to-image", "models": models}),
            content_type="application/json",
        )

    def model_versions(self, request):
        self.requests.append(request)
        if (failure := self.failed(request)) is not None:
            return failure
        slug = "/".join(request.path.split("/")[3:5])
        start = int(request.args.get("page", 0))
        page = self.versions[slug][start : start + 2]
        following = start + 2 < len(self.versions[slug])
        body = {
            "previous": None,
            "next": f"{self.base}/v1/models/{slug}/versions?page={start + 2}"
            if following
            else None,
            "results": page,
        }
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def replicate(httpserver):
    fake = FakeReplicate(httpserver.url_for("").rstrip("/"))
    httpserver.expect_request("/v1/collections/text-to-image").respond_with_handler(fake.collection)
    for slug in fake.versions:
        httpserver.expect_request(f"/v1/models/{slug}/versions").respond_with_handler(
            fake.model_versions
        )
    return fake


def registry(fake, **settings):
    return create_registry(
        "replicate", endpoint=fake.base, http={"retry": {"attempts": 2, "backoff_s": 0.01}},
        **settings,
    )  # fmt: skip


def test_versions_are_releases_across_pages_and_restarts(replicate, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_token")
    for version, day in (("v1", 1), ("v2", 2), ("v3", 3)):
        replicate.release("acme/painter", version, day)
    replicate.release("acme/sketcher", "s1", 4)
    first, cursor = registry(replicate).poll(None)
    assert [r.id for r in first] == ["acme/painter@v3", "acme/sketcher@s1"]  # latest only
    assert first[0].loader.kind == "replicate" and first[0].loader.revision == "v3"
    assert replicate.requests[0].headers["Authorization"] == "Bearer r8_token"

    for version, day in (("v4", 5), ("v5", 6), ("v6", 7)):
        replicate.release("acme/painter", version, day)
    stored = json.loads(json.dumps(cursor))
    second, cursor = registry(replicate).poll(stored)
    assert [r.id for r in second] == ["acme/painter@v4", "acme/painter@v5", "acme/painter@v6"]
    assert any("page=2" in r.full_path for r in replicate.requests)  # followed `next`
    assert registry(replicate).poll(cursor)[0] == []


def test_include_and_exclude(replicate):
    replicate.release("acme/painter", "v1", 1)
    replicate.release("acme/sketcher", "s1", 2)
    releases, _ = registry(replicate, exclude=["*/sketch*"]).poll(None)
    assert [r.name for r in releases] == ["acme/painter"]


def test_a_malformed_collection_raises(httpserver):
    httpserver.expect_request("/v1/collections/text-to-image").respond_with_json({"models": 3})
    with pytest.raises(MalformedResponse, match="models"):
        create_registry("replicate", endpoint=httpserver.url_for("")).poll(None)


def late(request):
    time.sleep(4.0)  # the client gives up first (at 1.5 s, ample when loaded), retries
    return Response("{}")


@pytest.mark.parametrize(
    "failure",
    [
        Response("slow down", status=429, headers={"Retry-After": "0"}),
        Response("unavailable", status=503),
        late,
    ],
)
def test_rate_limits_server_errors_and_timeouts_are_retried(replicate, failure):
    replicate.release("acme/painter", "v1", 1)
    replicate.failures.append(failure)
    made = create_registry(
        "replicate", endpoint=replicate.base, include=["acme/painter"],
        http={"timeout_s": 1.5, "retry": {"attempts": 4, "backoff_s": 0.2}},
    )  # fmt: skip
    assert [r.id for r in made.poll(None)[0]] == ["acme/painter@v1"]


def test_truncated_versions_raise(replicate):
    replicate.release("acme/painter", "v1", 1)
    replicate.failures += [
        None,
        Response('{"results": [{"id": "v', content_type="application/json"),
    ]
    with pytest.raises(MalformedResponse, match="not JSON"):
        registry(replicate, include=["acme/painter"]).poll(None)
