"""The Hugging Face Hub as a registry of text-to-image releases.

Two listings of ``GET /api/models`` per poll, both newest first and followed through the
``Link: <...>; rel="next"`` pagination header until the cursor's high-water mark:

1. ``sort=createdAt``: models created since the last poll; each is a release
   ``repo@sha``;
2. ``sort=lastModified``: known models whose ``sha`` changed; each new revision is a
   release too.

The cursor holds both marks, the ids already returned at the creation mark (timestamps
tie) and the last sha of every model returned, so a restart between polls neither repeats
nor loses a release. The first poll looks back ``lookback_days``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.http import HttpClient, MalformedResponse, UsesHttp
from adapters.registries.base import Cursor, Loader, Release, selected
from eliq.hub_ids import HUB_ID

log = logging.getLogger(__name__)
EXPAND = ["author", "createdAt", "lastModified", "sha", "tags", "downloads", "likes",
          "library_name", "pipeline_tag", "cardData"]  # fmt: skip


class HubModel(BaseModel):
    """The fields of a ``/api/models`` entry eliq reads; anything else is ignored."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=f"^{HUB_ID.pattern}$")  # owner/name: a repository, not a path
    createdAt: datetime
    lastModified: datetime | None = None
    sha: str | None = None
    tags: list[str] = []
    downloads: int | None = None
    likes: int | None = None
    library_name: str | None = None
    cardData: dict[str, Any] | None = None

    @property
    def revision(self) -> str:
        return self.sha or (self.lastModified or self.createdAt).isoformat()

    def tag_value(self, prefix: str) -> str | None:
        return next((t.split(":", 1)[1] for t in self.tags if t.startswith(prefix + ":")), None)


class HuggingFaceRegistry(UsesHttp):
    """Settings: ``endpoint`` (a mirror or test server), ``token_env`` (default ``HF_TOKEN``),
    filters ``author``, ``tags``, ``library``, ``search``, and ``include`` (only these repo
    ids) / ``exclude`` (glob patterns of repo ids)."""

    def __init__(
        self,
        endpoint: str = "https://huggingface.co",
        token_env: str | None = "HF_TOKEN",
        pipeline_tag: str = "text-to-image",
        author: str | None = None,
        tags: list[str] | None = None,
        library: str | None = None,
        search: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        page_size: int = 100,
        lookback_days: float = 7.0,
        max_pages: int = 50,
        name: str = "huggingface",
        http: dict | None = None,
    ) -> None:
        self.name = name
        self.client = HttpClient.create(endpoint, http, token_env)
        self.filters = [*(tags or []), *([library] if library else [])]
        self.params = {
            k: v
            for k, v in {
                "pipeline_tag": pipeline_tag,
                "author": author,
                "search": search,
                "limit": page_size,
            }.items()
            if v is not None
        }
        self.include = set(include or [])
        self.exclude = list(exclude or [])
        self.lookback = timedelta(days=lookback_days)
        self.max_pages = max_pages

    def poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        """New releases since ``cursor``, within one time budget (``http.budget_s``)."""
        with self.client.operation():
            return self._poll(cursor)

    def _poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        cursor = dict(cursor or {})
        now = datetime.now(UTC)
        created_mark = _when(cursor.get("created")) or now - self.lookback
        at_mark = set(cursor.get("created_ids", []))
        revisions: dict[str, str] = dict(cursor.get("revisions", {}))
        known = set(revisions)
        releases: list[Release] = []

        newest, newest_ids = created_mark, set(at_mark)
        for model in self._listing("createdAt"):
            if model.createdAt < created_mark:
                break
            if model.createdAt == created_mark and model.id in at_mark:
                continue
            if model.createdAt > newest:
                newest, newest_ids = model.createdAt, set()
            if model.createdAt == newest:
                newest_ids.add(model.id)
            if selected(model.id, self.include, self.exclude) and model.id not in known:
                releases.append(self._release(model, model.createdAt))
                revisions[model.id] = model.revision

        modified_mark = _when(cursor.get("modified"))
        latest_modified = modified_mark
        for model in self._listing("lastModified"):
            stamp = model.lastModified or model.createdAt
            if latest_modified is None or stamp > latest_modified:
                latest_modified = stamp
            if modified_mark is None or stamp < modified_mark:
                break  # the first poll only sets the mark
            if model.id in known and revisions.get(model.id) != model.revision:
                releases.append(self._release(model, stamp))
                revisions[model.id] = model.revision

        releases.sort(key=lambda r: (r.appeared_at, r.id))
        new_cursor = {
            "created": newest.isoformat(),
            "created_ids": sorted(newest_ids),
            "modified": (latest_modified or now).isoformat(),
            "revisions": revisions,
        }
        return releases, new_cursor

    def _release(self, model: HubModel, when: datetime) -> Release:
        card = model.cardData or {}
        return Release(
            id=f"{model.id}@{model.revision}",
            source=self.name,
            name=model.id,
            appeared_at=when,
            loader=Loader(
                kind="diffusers", ref=model.id, revision=model.sha, options={"hub": True}
            ),
            metadata={
                "license": card.get("license") or model.tag_value("license"),
                "base_model": card.get("base_model") or model.tag_value("base_model"),
                "tags": model.tags,
                "downloads": model.downloads,
                "likes": model.likes,
                "library": model.library_name,
            },
        )

    def _listing(self, sort: str) -> Iterator[HubModel]:
        """Models newest first by ``sort``, page after page."""
        url: str | None = "/api/models"
        params: Any = [
            *self.params.items(),
            ("sort", sort),
            ("direction", "-1"),
            *(("filter", f) for f in self.filters),
            *(("expand", e) for e in EXPAND),
        ]
        for _ in range(self.max_pages):
            if url is None:
                return
            body, response = self.client.json("GET", url, params=params)
            if not isinstance(body, list):
                raise MalformedResponse(f"/api/models returned {type(body).__name__}, not a list")
            for entry in body:
                try:
                    yield HubModel.model_validate(entry)
                except ValidationError as error:
                    raise MalformedResponse(f"/api/models entry not understood: {error}") from error
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries its own query
        raise MalformedResponse(
            f"more than {self.max_pages} pages sorted by {sort}; raise max_pages"
        )


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
