"""Encoded text, kept by key: one least-recently-used cache type for every text feature the
critic reuses. Two live in a process:

* each :class:`~eliq.critic.critic.Critic` keeps its own, of the instruction features its
  text side (LoRA included) makes of each prompt: prompts repeat across images;
* :data:`BACKBONE_TEXT`, shared by every critic, keeps what a frozen text backbone makes
  alone (bare prompts' sentence embeddings, a vision backbone's concept labels), keyed by
  the backbone's weights: a champion, its challengers and the next cycle's critics embed
  one prompt suite once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Value = TypeVar("Value")


class TextCache(Generic[Value]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[str, Value] = OrderedDict()

    def get(
        self, keys: Sequence[str], compute: Callable[[list[str]], Sequence[Value]]
    ) -> list[Value]:
        """The value of each key, computing the missing ones together (``compute(missing)``
        returns their values in order); the oldest are dropped past ``size``, after use."""
        missing = [k for k in dict.fromkeys(keys) if k not in self._kept]
        if missing:
            self._kept.update(zip(missing, compute(missing), strict=True))
        for key in keys:
            self._kept.move_to_end(key)
        values = [self._kept[k] for k in keys]
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return values

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)


BACKBONE_TEXT: TextCache = TextCache(size=20_000)
"""What frozen text backbones make of text, for the whole process (see the module)."""
