"""A model hub on localhost that speaks the part of the Hugging Face Hub's HTTP API that
``huggingface_hub`` uses to create a repository, commit files and download a snapshot:
repositories hold commits (each a full file tree with a sha), ``main`` is the newest, and
any earlier commit can be downloaded by its sha. Files are committed inline ("regular"
upload mode), so no LFS or Xet storage is involved."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from werkzeug import Request, Response


@dataclass
class LocalHub:
    token: str
    repos: dict[str, list[tuple[str, dict[str, bytes]]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        self.requests.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _json({"error": "Invalid credentials"}, 401)
        parts = request.path.strip("/").split("/")
        if request.path == "/api/repos/create" and request.method == "POST":
            body = request.get_json()
            repo = (
                f"{body['organization']}/{body['name']}"
                if body.get("organization")
                else body["name"]
            )
            self.repos.setdefault(repo, [])
            return _json({"url": f"{request.host_url}{repo}", "name": repo})
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            repo, action, revision = "/".join(parts[2:4]), parts[4], "/".join(parts[5:])
            if repo not in self.repos:
                return _json(
                    {"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"}
                )
            if action == "preupload":
                files = request.get_json()["files"]
                return _json(
                    {
                        "files": [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                            for f in files
                        ]
                    }
                )
            if action == "commit":
                return self._commit(repo, request)
            if action == "revision":
                return self._info(repo, revision)
            if action == "tree":  # tree/<revision>[/<folder>]
                return self._tree(repo, parts[5], "/".join(parts[6:]))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file(request, "/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        return _json({"error": f"not served here: {request.method} {request.path}"}, 404)

    def _commit(self, repo: str, request: Request) -> Response:
        tree = dict(self.repos[repo][-1][1]) if self.repos[repo] else {}
        for line in request.get_data().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                tree[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                tree.pop(item["value"]["path"], None)
        sha = hashlib.sha1(
            json.dumps(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in tree.items())).encode()
            + str(len(self.repos[repo])).encode()
        ).hexdigest()
        self.repos[repo].append((sha, tree))
        return _json(
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{request.host_url}{repo}/commit/{sha}",
            }
        )

    def _commit_at(self, repo: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        commits = self.repos.get(repo) or []
        if revision == "main":
            return commits[-1] if commits else None
        return next((c for c in commits if c[0] == revision), None)

    def _info(self, repo: str, revision: str) -> Response:
        found = self._commit_at(repo, revision)
        if found is None:
            return _json({"error": "Revision not found"}, 404, {"X-Error-Code": "RevisionNotFound"})
        sha, tree = found
        siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(tree.items())]
        return _json(
            {"id": repo, "modelId": repo, "sha": sha, "siblings": siblings, "private": False}
        )

    def _tree(self, repo: str, revision: str, folder: str = "") -> Response:
        found = self._commit_at(repo, revision)
        if found is None:
            return _json({"error": "Revision not found"}, 404, {"X-Error-Code": "RevisionNotFound"})
        inside = {n: d for n, d in found[1].items() if not folder or n.startswith(f"{folder}/")}
        if not inside:
            return _json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
        return _json(
            [
                {
                    "type": "file",
                    "path": name,
                    "size": len(data),
                    "oid": hashlib.sha1(data).hexdigest(),
                }
                for name, data in sorted(inside.items())
            ]
        )

    def _file(self, request: Request, repo: str, revision: str, name: str) -> Response:
        found = self._commit_at(repo, revision)
        if found is None or name not in found[1]:
            return _json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
        sha, tree = found
        data = tree[name]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
        }
        return Response(data, headers=headers)  # the server sends no body to a HEAD


def _json(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/json"
    )
