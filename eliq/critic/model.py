"""The critic network: backbones, gated fusion and a Quality Query Transformer.

Data flow for a batch of images, each with an optional prompt::

    views (global + native crops) --vision backbone--> pooled levels + low-level statistics
        --per-level projection--> visual tokens (one per view and level)
    instruction(prompt) --text backbone--> text tokens
    visual tokens --GatedFusion(text tokens)--> fused tokens
    [fused tokens; text tokens] --QualityQueryTransformer--> (quality, alignment)

Only LoRA adapters (peft) on the backbones, the projections, the fusion and the query
transformer are trainable; the backbones' own weights stay as pre-trained.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from eliq.critic.config import CriticConfig, LoraSettings
from eliq.critic.encoders import TextEncoder, VisionEncoder
from eliq.critic.statistics import FEATURES, view_statistics


class GatedFusion(nn.Module):
    """Visual tokens cross-attend to the instruction's tokens; a learned gate per token and
    channel decides how much of that to mix in. The gate starts mostly closed, so an untrained
    critic sees the image first."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attend = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.gate = nn.Linear(2 * dim, dim)
        nn.init.constant_(self.gate.bias, -2.0)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, visual: torch.Tensor, text: torch.Tensor, text_padding: torch.Tensor
    ) -> torch.Tensor:
        attended, _ = self.attend(visual, text, text, key_padding_mask=text_padding)
        gate = torch.sigmoid(self.gate(torch.cat([visual, attended], dim=-1)))
        return self.norm(visual + gate * attended)


class QualityQueryTransformer(nn.Module):
    """A few learnable queries per axis attend to the fused tokens; one head per axis reads
    its queries' mean."""

    def __init__(self, dim: int, heads: int, queries_per_axis: int, layers: int, dropout: float):
        super().__init__()
        self.queries_per_axis = queries_per_axis
        self.queries = nn.Parameter(torch.randn(2 * queries_per_axis, dim) * 0.02)
        layer = nn.TransformerDecoderLayer(
            dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 1)) for _ in range(2)
        )

    def forward(self, memory: torch.Tensor, memory_padding: torch.Tensor) -> torch.Tensor:
        queries = self.queries.expand(len(memory), -1, -1)
        out = self.decoder(queries, memory, memory_key_padding_mask=memory_padding)
        axes = out.split(self.queries_per_axis, dim=1)
        return torch.cat(
            [head(axis.mean(dim=1)) for head, axis in zip(self.heads, axes, strict=True)], 1
        )


class CriticModel(nn.Module):
    """``forward(views, texts) -> (B, 2)``: column 0 is quality, column 1 alignment."""

    def __init__(self, config: CriticConfig, vision: VisionEncoder, text: TextEncoder) -> None:
        super().__init__()
        self.config = config
        self.vision = vision
        self.text = text
        for parameter in [*vision.parameters(), *text.parameters()]:
            parameter.requires_grad_(False)
        _add_lora(vision, config.vision_lora, vision.default_lora_targets)
        _add_lora(text, config.text_lora, text.default_lora_targets)
        dim = config.dim
        feature_dims = [*vision.level_dims, len(FEATURES)]
        self.level_projections = nn.ModuleList(nn.Linear(d, dim) for d in feature_dims)
        self.level_embedding = nn.Parameter(torch.zeros(len(feature_dims), dim))
        self.view_embedding = nn.Parameter(torch.zeros(2, dim))  # global view, crop
        self.visual_norm = nn.LayerNorm(dim)
        self.text_projection = nn.Linear(text.dim, dim)
        self.fusion = GatedFusion(dim, config.heads, config.dropout)
        self.query_transformer = QualityQueryTransformer(
            dim, config.heads, config.queries_per_axis, config.decoder_layers, config.dropout
        )

    @property
    def vision_is_frozen(self) -> bool:
        """True when no vision parameter trains: its features can then be cached."""
        return not any(p.requires_grad for p in self.vision.parameters())

    def vision_features(self, views: torch.Tensor) -> list[torch.Tensor]:
        """Pooled backbone levels plus statistics for ``(B, V, 3, S, S)`` views, each level
        ``(B, V, d)``: the part of the forward pass that can be cached while it is frozen."""
        batch, count = views.shape[:2]
        flat = views.flatten(0, 1)
        levels = [*self.vision(flat), view_statistics(flat)]
        return [level.reshape(batch, count, -1) for level in levels]

    def visual_tokens(self, features: list[torch.Tensor]) -> torch.Tensor:
        batch, count = features[0].shape[:2]
        tokens = torch.stack(
            [proj(level) for proj, level in zip(self.level_projections, features, strict=True)],
            dim=2,
        )  # (B, V, L, dim)
        view_kind = torch.ones(count, dtype=torch.long, device=tokens.device)
        view_kind[0] = 0
        tokens = tokens + self.level_embedding + self.view_embedding[view_kind][:, None]
        return self.visual_norm(tokens.reshape(batch, count * len(features), -1))

    def text_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, padding = self.text(texts, self.config.max_prompt_tokens)
        return self.text_projection(hidden), padding

    def score_features(
        self,
        features: list[torch.Tensor],
        text: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        visual = self.visual_tokens(features)
        text_tokens, text_padding = text
        fused = self.fusion(visual, text_tokens, text_padding)
        memory = torch.cat([fused, text_tokens], dim=1)
        padding = torch.cat(
            [torch.zeros(visual.shape[:2], dtype=torch.bool, device=visual.device), text_padding],
            dim=1,
        )
        return self.query_transformer(memory, padding)

    def forward(self, views: torch.Tensor, texts: list[str]) -> torch.Tensor:
        return self.score_features(self.vision_features(views), self.text_tokens(texts))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Everything a checkpoint must hold: the backbones' own weights are loaded by name."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}


def _add_lora(module: nn.Module, settings: LoraSettings, default_targets: list[str] | str) -> None:
    if not settings.enabled:
        return
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules or default_targets,
    )
    inject_adapter_in_model(config, module)
