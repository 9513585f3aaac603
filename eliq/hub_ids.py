"""What a Hugging Face Hub repository id looks like (``owner/name``, each part up to 96
letters, digits, ``_``, ``.`` or ``-``, starting with a letter or digit): one pattern for
every place that must not take a path on this machine for a repository (loading a critic,
the registries' ids, the diffusers generator's downloads)."""

from __future__ import annotations

import re

HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def is_repo_id(name: str) -> bool:
    """Whether ``name`` is a hub repository id (and no ``..`` in it)."""
    return bool(HUB_ID.fullmatch(name)) and ".." not in name
