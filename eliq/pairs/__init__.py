"""Label-free pair construction: positives and aspect-specific negatives."""

from eliq.pairs import aesthetic, alignment, artifacts, technical  # noqa: F401  (registers)
from eliq.pairs.families import NegativeFamily, available_families, get_family, register

__all__ = ["NegativeFamily", "available_families", "get_family", "register"]
