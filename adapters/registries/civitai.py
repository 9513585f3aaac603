"""Civitai as a registry: ``GET /api/v1/models``, each model version a release.

Listed with ``sort=Newest`` and followed through ``metadata.nextCursor`` until a page holds
nothing newer than the cursor's mark (a version's ``publishedAt``, else ``createdAt``). The
cursor keeps the mark and the version ids already returned at it. Civitai orders models,
not versions, by age: a new version of a model older than one page is found only when the
model resurfaces. Each version is a single-file checkpoint, sampled by the diffusers
generator (downloaded into the release's folder, with the token sent only to the download
URL's origin). A version with only pickled weights is still a release (with
``pickle_only`` in its metadata): the generator refuses it before downloading, which the
daemon records, rather than the release silently never existing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.http import HttpClient, MalformedResponse, UsesHttp
from adapters.registries.base import Cursor, Loader, Release


class CivitaiFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    type: str | None = None
    downloadUrl: str | None = None
    metadata: dict[str, Any] = {}


class CivitaiVersion(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    name: str | None = None
    createdAt: datetime
    publishedAt: datetime | None = None
    baseModel: str | None = None
    downloadUrl: str | None = None
    files: list[CivitaiFile] = []

    @property
    def appeared_at(self) -> datetime:
        return self.publishedAt or self.createdAt


class CivitaiModel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    name: str
    type: str | None = None
    tags: list[str] = []
    creator: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    modelVersions: list[CivitaiVersion] = []


class CivitaiRegistry(UsesHttp):
    def __init__(
        self,
        endpoint: str = "https://civitai.com",
        token_env: str | None = "CIVITAI_API_TOKEN",
        types: list[str] | None = None,
        base_models: list[str] | None = None,
        page_size: int = 100,
        lookback_days: float = 7.0,
        max_pages: int = 50,
        name: str = "civitai",
        http: dict | None = None,
    ) -> None:
        self.client = HttpClient.create(endpoint, http, token_env)
        self.token_env = token_env
        self.name = name
        self.params: list[tuple[str, Any]] = [
            ("limit", page_size),
            ("sort", "Newest"),
            *(("types", t) for t in (types or ["Checkpoint"])),
            *(("baseModels", b) for b in (base_models or [])),
        ]
        self.lookback = timedelta(days=lookback_days)
        self.max_pages = max_pages

    def poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        """New releases since ``cursor``, within one time budget (``http.budget_s``)."""
        with self.client.operation():
            return self._poll(cursor)

    def _poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        cursor = cursor or {}
        mark = (
            datetime.fromisoformat(cursor["mark"])
            if cursor.get("mark")
            else datetime.now(UTC) - self.lookback
        )
        at_mark = set(cursor.get("at_mark", []))
        releases: list[Release] = []
        for page in self._pages():
            newer_on_page = False
            for model in page:
                for version in model.modelVersions:
                    when = version.appeared_at
                    if when < mark or (when == mark and version.id in at_mark):
                        continue
                    newer_on_page = True
                    releases.append(self._release(model, version))
            if not newer_on_page:
                break
        releases.sort(key=lambda r: (r.appeared_at, r.id))
        newest = max([mark, *(r.appeared_at for r in releases)])
        ids = {int(r.metadata["version_id"]) for r in releases if r.appeared_at == newest}
        if newest == mark:
            ids |= at_mark
        return releases, {"mark": newest.isoformat(), "at_mark": sorted(ids)}

    def _release(self, model: CivitaiModel, version: CivitaiVersion) -> Release:
        weights = [f for f in version.files if (f.type or "Model") == "Model"]
        safe = [f for f in weights if f.metadata.get("format") == "SafeTensor"]
        chosen = (safe or weights or [None])[0]
        return Release(
            id=f"civitai:{model.id}@{version.id}",
            source=self.name,
            name=f"civitai:{model.id}",
            appeared_at=version.appeared_at,
            loader=Loader(
                kind="diffusers",
                ref=(chosen.downloadUrl if chosen else None) or version.downloadUrl or "",
                revision=str(version.id),
                options={
                    "single_file": True,
                    "file": chosen.name if chosen else None,
                    "base_model": version.baseModel,
                    "token_env": self.token_env,
                },
            ),
            metadata={
                "model": model.name,
                "version": version.name,
                "version_id": version.id,
                "base_model": version.baseModel,
                "type": model.type,
                "tags": model.tags,
                "creator": (model.creator or {}).get("username"),
                "downloads": (model.stats or {}).get("downloadCount"),
                "pickle_only": bool(weights) and not safe,
            },
        )

    def _pages(self) -> Iterator[list[CivitaiModel]]:
        params: list[tuple[str, Any]] = list(self.params)
        for _ in range(self.max_pages):
            body, _ = self.client.json("GET", "/api/v1/models", params=params)
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise MalformedResponse(f"/api/v1/models: no 'items' list in {body!r:.200}")
            try:
                yield [CivitaiModel.model_validate(item) for item in body["items"]]
            except ValidationError as error:
                raise MalformedResponse(f"/api/v1/models item not understood: {error}") from error
            next_cursor = (body.get("metadata") or {}).get("nextCursor")
            if not next_cursor:
                return
            params = [*self.params, ("cursor", next_cursor)]
        raise MalformedResponse(f"over {self.max_pages} pages of Civitai models; raise max_pages")
