"""Prompts as the critic takes them: one per image, each through
:func:`~eliq.prompts.record.prompt_or_none` (no prompt: quality only, no alignment), and
the key its text features are kept by."""

from __future__ import annotations

from collections.abc import Sequence

from eliq.prompts.record import prompt_or_none


def clean_prompts(prompts: str | Sequence[object] | None, count: int) -> list[str | None]:
    """One prompt (or None) per image, each through :func:`prompt_or_none`."""
    if prompts is None:
        return [None] * count
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of prompts, one per image, not one string")
    cleaned = [prompt_or_none(p, f"prompt {index}") for index, p in enumerate(prompts)]
    if len(cleaned) != count:
        raise ValueError(f"{count} images but {len(cleaned)} prompts")
    return cleaned


def prompt_cache_key(prompt: object) -> str:
    """A prompt as text features are kept by: :func:`prompt_or_none`, "" for none."""
    return prompt_or_none(prompt) or ""
