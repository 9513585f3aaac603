"""Prompts as structured records: the bundled suite, a spaCy parser and slot edits."""

from eliq.prompts.parser import PromptParser
from eliq.prompts.record import CATEGORIES, PromptRecord, Slot
from eliq.prompts.suite import load_suite

__all__ = ["CATEGORIES", "PromptParser", "PromptRecord", "Slot", "load_suite"]
