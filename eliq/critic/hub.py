"""Critics on a Hugging Face Hub (or a compatible server, ``HF_ENDPOINT``).

``Critic.from_pretrained("org/name", revision=...)`` downloads a checkpoint and
``critic.push_to_hub("org/name")`` uploads one. Only the checkpoint's own files travel
(:data:`CHECKPOINT_FILES`: JSON and safetensors, nothing that unpickles), and a download
can be pinned to a commit (``revision``), as peft adapters pin theirs. Downloads go through
``huggingface_hub``'s cache, so a second load, and any load with ``HF_HUB_OFFLINE=1``, reads
from disk.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

log = logging.getLogger(__name__)
CHECKPOINT_FILES = ("config.json", "model.safetensors", "scale.json", "training.json")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_commit(revision: str) -> bool:
    """A hub commit id (what pins a repository), not a branch, tag or file digest."""
    return bool(_COMMIT.match(revision))


def is_repo_id(name: str) -> bool:
    """Whether ``name`` reads as a hub repository id (``org/name``)."""
    return bool(_REPO_ID.match(name)) and ".." not in name


def download(repo_id: str, revision: str | None = None, token: str | None = None) -> Path:
    """The local folder of ``repo_id``'s checkpoint at ``revision`` (default: main)."""
    try:
        folder = snapshot_download(
            repo_id, revision=revision, allow_patterns=list(CHECKPOINT_FILES), token=token
        )
    except LocalEntryNotFoundError as missing:  # huggingface_hub's answer to any failure
        cause = missing.__cause__
        why = _first_line(cause) if cause is not None else "the hub is out of reach"
        raise FileNotFoundError(
            f"critic {repo_id!r} at {revision or 'main'} is not in the local hub cache, and {why}"
        ) from None
    except HfHubHTTPError as error:
        raise FileNotFoundError(f"critic {repo_id!r}: {_first_line(error)}") from None
    log.info("critic %s at %s from the hub", repo_id, revision or "main")
    return Path(folder)


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
