"""Replicate as a registry: the models of a collection (default ``text-to-image``), each
model version a release.

``GET /v1/collections/{slug}`` lists the models; ``GET /v1/models/{owner}/{name}/versions``
lists a model's versions newest first, followed through its ``next`` link until the
model's mark. A model seen for the first time contributes its latest version only (the
release that is current); after that every new version is a release. The cursor keeps a
mark and the ids at it per model. Token: ``REPLICATE_API_TOKEN``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.http import HttpClient, MalformedResponse, UsesHttp
from adapters.registries.base import Cursor, Loader, Release, selected


class ReplicateVersion(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    created_at: datetime
    cog_version: str | None = None


class ReplicateModel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    owner: str
    name: str
    description: str | None = None
    license_url: str | None = None
    run_count: int | None = None
    visibility: str | None = None

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"


class ReplicateRegistry(UsesHttp):
    def __init__(
        self,
        endpoint: str = "https://api.replicate.com",
        token_env: str | None = "REPLICATE_API_TOKEN",
        collection: str = "text-to-image",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        max_pages: int = 20,
        name: str = "replicate",
        http: dict | None = None,
    ) -> None:
        self.client = HttpClient.create(endpoint, http, token_env)
        self.collection = collection
        self.include = set(include or [])
        self.exclude = list(exclude or [])
        self.max_pages = max_pages
        self.name = name

    def poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        """New releases since ``cursor``, within one time budget (``http.budget_s``)."""
        with self.client.operation():
            return self._poll(cursor)

    def _poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        marks: dict[str, dict[str, Any]] = dict((cursor or {}).get("models", {}))
        releases: list[Release] = []
        for model in self._models():
            if not selected(model.slug, self.include, self.exclude):
                continue
            mark = marks.get(model.slug)
            versions = self._new_versions(model, mark)
            if mark is None:
                versions = versions[:1]
            releases += [self._release(model, v) for v in versions]
            if versions:
                newest = max(v.created_at for v in versions)
                ids = [v.id for v in versions if v.created_at == newest]
                marks[model.slug] = {"mark": newest.isoformat(), "ids": ids}
        releases.sort(key=lambda r: (r.appeared_at, r.id))
        return releases, {"models": marks}

    def _models(self) -> list[ReplicateModel]:
        body, _ = self.client.json("GET", f"/v1/collections/{self.collection}")
        if not isinstance(body, dict) or not isinstance(body.get("models"), list):
            raise MalformedResponse(f"collection {self.collection}: no 'models' list")
        try:
            return [ReplicateModel.model_validate(m) for m in body["models"]]
        except ValidationError as error:
            raise MalformedResponse(f"collection {self.collection}: {error}") from error

    def _new_versions(
        self, model: ReplicateModel, mark: dict[str, Any] | None
    ) -> list[ReplicateVersion]:
        """Versions newer than ``mark``, newest first (all pages until the mark)."""
        since = datetime.fromisoformat(mark["mark"]) if mark else None
        seen = set(mark["ids"]) if mark else set()
        url: str | None = f"/v1/models/{model.owner}/{model.name}/versions"
        found: list[ReplicateVersion] = []
        for _ in range(self.max_pages):
            body, _ = self.client.json("GET", url)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise MalformedResponse(f"{model.slug} versions: no 'results' list")
            try:
                page = [ReplicateVersion.model_validate(v) for v in body["results"]]
            except ValidationError as error:
                raise MalformedResponse(f"{model.slug} versions: {error}") from error
            for version in page:
                if since is not None and (
                    version.created_at < since
                    or (version.created_at == since and version.id in seen)
                ):
                    return found
                found.append(version)
                if since is None:
                    return found  # a new model: its latest version is enough
            url = body.get("next")
            if not url:
                return found
        raise MalformedResponse(f"{model.slug}: over {self.max_pages} pages of versions")

    def _release(self, model: ReplicateModel, version: ReplicateVersion) -> Release:
        return Release(
            id=f"{model.slug}@{version.id}",
            source=self.name,
            name=model.slug,
            appeared_at=version.created_at,
            loader=Loader(kind="replicate", ref=model.slug, revision=version.id),
            metadata={
                "description": model.description,
                "license": model.license_url,
                "runs": model.run_count,
                "cog_version": version.cog_version,
            },
        )
