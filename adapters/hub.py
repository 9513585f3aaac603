"""What a Hugging Face Hub repository id looks like: registries check the ids they find
with it, and the diffusers generator the ids it fetches, so that neither takes a path on
this machine for a repository."""

from __future__ import annotations

import re

HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
