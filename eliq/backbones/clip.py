"""CLIP and SigLIP: any Hugging Face checkpoint of either (folder or hub id), one model
shared by the vision and text sides.

Vision levels are pooled patch tokens of three depths of the vision tower plus its image
embedding; the text tower encodes the instruction. CLIP's image embedding lives in its text
space already: it is what a view shows, for the alignment prior.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from eliq.backbones.base import Backbones, TextEncoder, VisionEncoder, pool
from eliq.backbones.imagenet import SentenceText, minilm_path
from eliq.backbones.revision import combined, hf_revision

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class HFDualEncoder(nn.Module):
    """A CLIP or SigLIP checkpoint, shared by its vision and text encoders."""

    def __init__(self, name_or_path: str | Path, revision: str | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        name = str(name_or_path)
        self.model = AutoModel.from_pretrained(name, revision=revision, use_safetensors=True)
        if not hasattr(self.model, "vision_model") or not hasattr(self.model, "text_model"):
            raise ValueError(f"{name_or_path} is not a CLIP or SigLIP checkpoint")
        self.tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        self.revision = hf_revision(name, revision)


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
        levels = [pool(out.hidden_states[depth], (1,)) for depth in self.depths]
        return [*levels, embedding]

    def concepts(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return F.normalize(levels[-1], dim=-1)

    @property
    def tower(self) -> nn.Module:
        model = self.dual.model
        parts = [model.vision_model, getattr(model, "visual_projection", None)]
        return nn.ModuleList([part for part in parts if part is not None])


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

    def forward(
        self, texts: list[str], max_tokens: int, images: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
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


class ClipFamily:
    """``vision_backbone``: a CLIP or SigLIP checkpoint; ``text_backbone``: ``clip`` (its
    own text tower), ``minilm`` or a sentence encoder. Claims any name no other family
    claims, so it is asked last."""

    def claims(self, vision: str, text: str) -> bool:
        return text != "joint"

    def load(self, vision: str, text: str, revision: str | None = None) -> Backbones:
        dual = HFDualEncoder(vision, revision)
        if text == "clip":
            return Backbones(HFVision(dual), HFText(dual), dual.revision)
        encoder = SentenceText(minilm_path() if text == "minilm" else text)
        return Backbones(HFVision(dual), encoder, combined(dual.revision, encoder.revision))
