"""Critics on a Hugging Face Hub (or a compatible server, ``HF_ENDPOINT``).

``Critic.from_pretrained("org/name", revision=...)`` downloads a checkpoint and
``critic.push_to_hub("org/name")`` uploads one. Only the checkpoint's own files travel
(:data:`CHECKPOINT_FILES`: JSON and safetensors, nothing that unpickles), and a download
can be pinned to a commit (``revision``), as peft adapters pin theirs. Downloads land in a
folder of eliq's own under the hub cache, so a second load, and any load with
``HF_HUB_OFFLINE=1``, reads from disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import build_hf_headers

log = logging.getLogger(__name__)
CHECKPOINT_FILES = ("config.json", "model.safetensors", "scale.json", "training.json")
DOWNLOAD_TIMEOUT_S = {"connect": 30.0, "read": 120.0, "write": 30.0, "pool": 30.0}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_commit(revision: str) -> bool:
    """A hub commit id (what pins a repository), not a branch, tag or file digest."""
    return bool(_COMMIT.match(revision))


def download(repo_id: str, revision: str | None = None, token: str | None = None) -> Path:
    """The local folder of ``repo_id``'s checkpoint at ``revision`` (default: main).

    eliq fetches the checkpoint's files itself, into a cache folder of its own under the
    hub cache: the files keep the names eliq gives them (a server's ETag or file name
    never becomes a path), and each download stops at the size the repository's listing
    announced (and is checked against its SHA-256 where the listing gives one)."""
    root = Path(constants.HF_HUB_CACHE) / f"eliq-critics--{repo_id.replace('/', '--')}"
    import httpx  # loaded when a critic is fetched, not with the library

    wanted = revision or "main"
    if constants.HF_HUB_OFFLINE:
        return _cached(root, repo_id, wanted, "the hub is out of reach (HF_HUB_OFFLINE)")
    try:
        info = HfApi(token=token).model_info(repo_id, revision=wanted, files_metadata=True)
    except HfHubHTTPError as error:
        raise FileNotFoundError(f"critic {repo_id!r}: {_first_line(error)}") from None
    except (httpx.HTTPError, OSError) as error:  # the hub is out of reach: the cache may do
        return _cached(root, repo_id, wanted, _first_line(error))
    commit = str(info.sha)
    if not is_commit(commit):
        raise FileNotFoundError(f"critic {repo_id!r}: the hub named no commit ({commit!r})")
    files = {f.rfilename: f for f in info.siblings or [] if f.rfilename in CHECKPOINT_FILES}
    if "config.json" not in files:
        raise FileNotFoundError(f"critic {repo_id!r} at {wanted} holds no config.json")
    folder = root / "snapshots" / commit
    folder.mkdir(parents=True, exist_ok=True)
    headers = build_hf_headers(token=token)
    for name, listed in files.items():
        if listed.size is None:
            raise FileNotFoundError(
                f"critic {repo_id!r}: the hub's listing gives no size of {name}"
            )
        target = folder / name
        if not (target.is_file() and target.stat().st_size == listed.size):
            url = f"{constants.ENDPOINT}/{repo_id}/resolve/{commit}/{name}"
            expected = listed.lfs.sha256 if listed.lfs is not None else None
            _fetch(url, target, listed.size, expected, headers)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / _ref_name(wanted)).write_text(commit)
    log.info("critic %s at %s (commit %s) from the hub", repo_id, wanted, commit)
    return folder


def _fetch(url: str, target: Path, size: int, sha256: str | None, headers: dict) -> None:
    """Stream ``url`` into ``target``: refused past ``size`` bytes, or short of it, or
    with another digest; nothing is left behind on failure."""
    import httpx

    digest = hashlib.sha256()
    received = 0
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".part-", delete=False) as part:
        try:
            # httpx drops the Authorization header on a redirect to another origin
            with httpx.stream(
                "GET",
                url,
                headers=headers,
                follow_redirects=True,
                timeout=httpx.Timeout(**DOWNLOAD_TIMEOUT_S),
            ) as answer:
                answer.raise_for_status()
                for chunk in answer.iter_bytes():
                    received += len(chunk)
                    if received > size:
                        raise FileNotFoundError(
                            f"{target.name}: the hub sent more than the {size} bytes its "
                            "listing announced; refused"
                        )
                    digest.update(chunk)
                    part.write(chunk)
            if received != size:
                raise FileNotFoundError(
                    f"{target.name}: {received} bytes arrived, the listing announced {size}"
                )
            if sha256 is not None and digest.hexdigest() != sha256:
                raise FileNotFoundError(f"{target.name}: its SHA-256 is not the listing's")
        except BaseException:
            Path(part.name).unlink(missing_ok=True)
            raise
    os.replace(part.name, target)


def _cached(root: Path, repo_id: str, revision: str, why: str) -> Path:
    """A checkpoint fetched before, when the hub cannot be asked."""
    ref = root / "refs" / _ref_name(revision)
    commit = revision if is_commit(revision) else ref.read_text().strip() if ref.is_file() else ""
    folder = root / "snapshots" / commit
    if commit and (folder / "config.json").is_file():
        log.info("critic %s at %s from the local hub cache (%s)", repo_id, revision, why)
        return folder
    raise FileNotFoundError(
        f"critic {repo_id!r} at {revision} is not in the local hub cache, and {why}"
    )


def _ref_name(revision: str) -> str:
    """A branch or tag as one file name (``refs/pr/1`` -> ``refs--pr--1``)."""
    return revision.replace("/", "--").replace("..", "__")


def upload(
    folder: Path,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    message: str = "Upload eliq critic",
) -> str:
    """Upload the checkpoint in ``folder`` to ``repo_id`` (created if missing) as one
    commit; returns the commit's id, to pin downloads to."""
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        allow_patterns=list(CHECKPOINT_FILES),
        commit_message=message,
    )
    log.info("pushed critic to %s (commit %s)", repo_id, info.oid)
    return info.oid


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
