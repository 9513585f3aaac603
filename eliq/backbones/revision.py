"""Which weights a backbone loaded: the revision a critic checkpoint pins.

A model from a hub has its commit (the snapshot folder its files were cached in); a model
from files (a local folder, an installed package's weights) is named by a digest of the
files' bytes, read once per process for each file as it is on disk (path, inode, size,
modification and change times, as build tools tell a rewritten file)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".bin", ".json", ".model", ".txt", ".jinja")
CHUNK = 1 << 22


def files_revision(paths: Iterable[Path]) -> str:
    """A digest of the files' names and bytes, folders read recursively (weights, configs
    and tokenizer files; nothing else)."""
    digest = hashlib.sha256()
    for path in sorted(_files(paths)):
        stat = path.stat()
        on_disk = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        digest.update(path.name.encode())
        digest.update(_file_digest(str(path), on_disk).encode())
    return "sha256:" + digest.hexdigest()[:16]


def hf_revision(name_or_path: str, revision: str | None = None) -> str | None:
    """The revision of a transformers model just loaded from ``name_or_path``: its folder's
    digest, or for a hub id the commit its files were downloaded at (read from the local
    hub cache, so it needs no request and works offline)."""
    local = Path(name_or_path)
    if local.is_dir():
        return files_revision([local])
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
    return Path(cached).parent.name if isinstance(cached, str) else revision


def combined(*revisions: str | None) -> str | None:
    """One revision for backbones loaded from more than one place."""
    known = [r for r in revisions if r]
    return "+".join(known) if known else None


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_dir():
            yield from (f for f in path.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
        elif path.is_file():
            yield path


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, on_disk: tuple[int, ...]) -> str:
    """The file's sha256; ``on_disk`` is its stat, so the cache reads a rewritten file again."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
