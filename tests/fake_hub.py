"""A Hugging Face Hub ``/api/models`` endpoint on localhost, shaped like the real one:
newest first by ``sort``, ``limit`` per page, a ``Link: <...>; rel="next"`` header with a
cursor, extra fields eliq does not read, and failures on demand."""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from werkzeug import Request, Response

EPOCH = datetime(2026, 11, 20, tzinfo=UTC)


@dataclass
class FakeHub:
    base_url: str
    models: list[dict] = field(default_factory=list)
    failures: deque = field(default_factory=deque)  # callables returning a Response, or None
    requests: list[Request] = field(default_factory=list)

    def add(self, repo: str, created_minutes: int, sha: str = "a" * 40, **extra) -> dict:
        created = EPOCH + timedelta(minutes=created_minutes)
        model = {
            "_id": f"id-{repo}",
            "id": repo,
            "author": repo.split("/")[0],
            "createdAt": created.isoformat().replace("+00:00", "Z"),
            "lastModified": created.isoformat().replace("+00:00", "Z"),
            "sha": sha,
            "tags": ["diffusers", "text-to-image", "license:openrail"],
            "downloads": 10,
            "likes": 1,
            "library_name": "diffusers",
            "pipeline_tag": "text-to-image",
            "private": False,
            "widgetData": [{"text": "an unexpected field"}],
            **extra,
        }
        self.models.append(model)
        return model

    def new_revision(self, repo: str, sha: str, modified_minutes: int) -> None:
        model = next(m for m in self.models if m["id"] == repo)
        model["sha"] = sha
        stamp = EPOCH + timedelta(minutes=modified_minutes)
        model["lastModified"] = stamp.isoformat().replace("+00:00", "Z")

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        if self.failures:
            failure = self.failures.popleft()
            response = failure()
            if response is not None:
                return response
        sort = request.args.get("sort", "createdAt")
        limit = int(request.args.get("limit", 100))
        start = int(request.args.get("cursor", 0))
        ordered = sorted(self.models, key=lambda m: m[sort], reverse=True)
        page = ordered[start : start + limit]
        headers = {}
        if start + limit < len(ordered):
            query = request.args.copy()
            query["cursor"] = str(start + limit)
            link = f"{self.base_url}/api/models?" + "&".join(
                f"{k}={v}" for k, values in query.lists() for v in values
            )
            headers["Link"] = f'<{link}>; rel="next"'
        return Response(json.dumps(page), headers=headers, content_type="application/json")


def rate_limited(seconds: int = 2):
    return lambda: Response(
        "rate limited",
        status=429,
        headers={
            "RateLimit": f'"api";r=0;t={seconds}',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        },
    )


def server_error():
    return Response("upstream failed", status=500)


def truncated_json():
    return Response('[{"id": "a/b", "createdAt": "2026-11-2', content_type="application/json")


def slow(seconds: float):
    def respond():
        time.sleep(seconds)  # the client times out first; the hub then answers normally

    return respond
