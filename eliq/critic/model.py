"""The critic network: backbones, gated fusion and a Quality Query Transformer.

Data flow for a batch of images, each with an optional prompt::

    views (global + native crops) --vision backbone--> pooled levels + low-level statistics
        --per-level projection--> visual tokens (one per view and level)
    instruction(prompt) --text backbone--> text tokens;  prompt --> sentence embedding
        (a joint backbone, a multimodal LLM, reads the global view with the instruction)
    visual tokens --GatedFusion(text tokens)--> fused tokens
    [fused tokens; text tokens] --QualityQueryTransformer--> residual (quality, alignment)
    crop-averaged low levels --linear--> quality residual
    (optional) global view's last level --linear--> quality residual
    global view's last level x sentence embedding --bilinear--> alignment residual
    scores = prior (quality, alignment) + residuals

Each axis starts from a fixed prior that needs no training, and the network learns only a
residual on top of it (see :mod:`eliq.train.losses` for how training keeps it in check):

* quality: the log variance of the Laplacian pooled over the native-resolution crops, less
  what white noise at the level Immerkaer's filter estimates adds to it (noise raises the
  Laplacian, yet it is a defect), minus ``recognisability_weight`` times the entropy
  (nats) of the backbone's ImageNet class probabilities averaged over the views. On
  generated images full-resolution sharpness is the strongest single label-free signal;
  how confidently a classifier recognises what the image shows adds what sharpness misses
  (malformed, unrecognisable content), chiefly among images of one generator. With
  ``pristine`` set, minus the distance of the image's more textured crops from a Gaussian
  of pristine photographs' crops is added (:mod:`eliq.critic.pristine`). Heads trained
  only on synthetic distortions overfit to them, so the network learns a residual that
  corrects the prior where the pairs say it is wrong.
* alignment: the backbones' own pre-aligned judgement of prompt and image (see
  :mod:`eliq.backbones`), scaled by ``ALIGNMENT_PRIOR_SCALE``. For a classifier
  (MobileNetV2, EfficientNet-Lite) the evidence that a view shows what the prompt names:
  the similarity between the prompt and the names of the ImageNet classes the view shows
  (expected under its class probabilities) above the prompt's mean similarity to all
  class names, which is what a view showing nothing in particular would get (some
  prompts are close to many class names, and would otherwise score well whatever the
  image shows); the best view's, since a named object may fill one crop only. For a dual
  encoder (CLIP) the image-prompt similarity, averaged over views; 0 for a family without
  one (a multimodal LLM, whose language model reads image and prompt together in the
  text tokens). Two backbones that never saw an image-text pair cannot learn matching from
  a few thousand label-free pairs; they can learn a correction to it: a bilinear map from
  what the whole image shows to the prompt's embedding.

Only LoRA adapters (peft) on the backbones, the projections, the fusion and the query
transformer are trainable; the backbones' own weights stay as pre-trained.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from eliq.backbones.base import TextEncoder, VisionEncoder
from eliq.critic.config import CriticConfig, LoraSettings
from eliq.critic.fingerprint import state_digest
from eliq.critic.pristine import PristineStatistics
from eliq.critic.statistics import FEATURES, noise_free_sharpness, view_statistics
from eliq.critic.text_cache import BACKBONE_TEXT
from eliq.devices import one_image_at_a_time
from eliq.prompts.record import prompt_or_none

TOP_CONCEPTS = 10
# Puts a similarity difference of 0.1 (a clear mismatch) at 1 unit, the same order as the
# quality prior's gap between a sharp image and a blurred one.
ALIGNMENT_PRIOR_SCALE = 10.0


class TextFeatures(NamedTuple):
    """The text side of a batch: instruction tokens ``(B, T, dim)``, their padding mask
    ``(B, T)`` and the prompt's unit sentence embedding ``(B, e)`` (zeros without a prompt)."""

    tokens: torch.Tensor
    padding: torch.Tensor
    sentence: torch.Tensor


class ScoreParts(NamedTuple):
    """A batch's ``(B, 2)`` scores split into what training treats apart: the fixed prior,
    the query transformer's residual and the linear residuals'."""

    prior: torch.Tensor
    query: torch.Tensor
    linear: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.prior + self.query + self.linear


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
        for head in self.heads:  # an untrained critic scores exactly its prior
            nn.init.zeros_(head[1].weight)
            nn.init.zeros_(head[1].bias)

    def forward(
        self,
        memory: torch.Tensor,
        memory_padding: torch.Tensor,
        hidden_from_quality: torch.Tensor,
    ) -> torch.Tensor:
        """``hidden_from_quality``: ``(S,)`` True for memory tokens the quality queries must
        not attend to."""
        queries = self.queries.expand(len(memory), -1, -1)
        quality = slice(0, self.queries_per_axis)
        memory_mask = torch.zeros(len(self.queries), memory.shape[1], dtype=torch.bool)
        memory_mask[quality] = hidden_from_quality
        # nor may they read it second-hand from the alignment queries
        query_mask = torch.zeros(len(self.queries), len(self.queries), dtype=torch.bool)
        query_mask[quality, self.queries_per_axis :] = True
        out = self.decoder(
            queries,
            memory,
            tgt_mask=query_mask.to(memory.device),
            memory_mask=memory_mask.to(memory.device),
            memory_key_padding_mask=memory_padding,
        )
        axes = out.split(self.queries_per_axis, dim=1)
        return torch.cat(
            [head(axis.mean(dim=1)) for head, axis in zip(self.heads, axes, strict=True)], 1
        )


class _Standardised(nn.Module):
    """Features standardised by statistics gathered while training (a BatchNorm without
    affine parameters, cumulative average), for the linear residuals below. Each starts at
    zero, and training penalises its weights (ridge), not its output: a large correction
    where the features are far out costs no more than a small one, so the pairs can
    overrule the prior where it is wrong, while a few linear directions keep it from
    overfitting to the synthetic distortions."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.BatchNorm1d(dim, affine=False, momentum=None)

    def standardise(self, features: torch.Tensor) -> torch.Tensor | None:
        """None while training on a batch of one: BatchNorm needs a batch to measure."""
        if self.training and len(features) < 2:
            return None
        return self.scale(features)


class LinearResidual(_Standardised):
    """A linear correction of the quality prior from one image-level feature vector,
    starting at zero: the crop-averaged low-level features (noise raises the Laplacian, and
    the pairs can say so) and, optionally, the global view's last backbone level (what the
    whole image shows). Measured with whole generators held out, such low-capacity
    residuals ranked images within the unseen generators better than the prior, where
    free heads overfit (see the README)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.linear = nn.Linear(dim, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        standardised = self.standardise(features)
        if standardised is None:
            return features.new_zeros(len(features))
        return self.linear(standardised).squeeze(-1)

    @property
    def ridge_weight(self) -> torch.Tensor:
        return self.linear.weight


class AlignmentResidual(_Standardised):
    """A bilinear correction of the alignment prior, ``z(image) @ W @ sentence``: what the
    whole image shows (the backbone's last level on the global view) against the bare
    prompt's sentence embedding. The prior only compares a prompt with ImageNet class
    names; this learns, from own-prompt-over-edited-prompt pairs, which image features go
    with which words (styles, colours, scenes). Measured with whole generators and their
    prompts held out, it raised within-group alignment SRCC where the query transformer's
    penalised residual did not move (see the README). Zero without a prompt."""

    def __init__(self, image_dim: int, text_dim: int) -> None:
        super().__init__(image_dim)
        self.weight = nn.Parameter(torch.zeros(image_dim, text_dim))

    def forward(self, image: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        standardised = self.standardise(image)
        if standardised is None:
            return sentence.new_zeros(len(sentence))
        return ((standardised @ self.weight) * sentence).sum(-1)

    @property
    def ridge_weight(self) -> torch.Tensor:
        return self.weight


def text_backbone_key(text: TextEncoder, max_tokens: int) -> str:
    """What the text backbone's own embeddings depend on: its weights and the token limit."""
    return state_digest(f"{max_tokens}|", text.state_dict())


def embedded_concepts(
    text: TextEncoder, labels: list[str], max_tokens: int, text_key: str | None = None
) -> torch.Tensor:
    """``(len(labels), sentence_dim)`` the text backbone's embeddings of the concept labels,
    computed once per process for each text backbone's weights (``text_key``, else
    computed): embedding the 1,000 ImageNet class names took 1.3-2 s of every critic's
    load, twice per evaluation step."""
    key = f"{text_key or text_backbone_key(text, max_tokens)}|concepts|" + "\n".join(labels)

    def embed(_: list[str]) -> list[torch.Tensor]:
        with torch.no_grad():
            return [
                torch.cat(
                    [
                        text.sentence(labels[i : i + 256], max_tokens)
                        for i in range(0, len(labels), 256)
                    ]
                )
            ]

    return BACKBONE_TEXT.get([key], embed)[0]


class CriticModel(nn.Module):
    """``forward(views, texts) -> (B, 2)``: column 0 is quality, column 1 alignment."""

    def __init__(self, config: CriticConfig, vision: VisionEncoder, text: TextEncoder) -> None:
        super().__init__()
        self.config = config
        self.vision = vision
        self.text = text
        for parameter in [*vision.parameters(), *text.parameters()]:
            parameter.requires_grad_(False)
        concept_bank = None
        limit = config.max_prompt_tokens
        self._text_key = text_backbone_key(text, limit)  # before LoRA: the backbone's own
        if vision.concept_labels is not None:
            concept_bank = embedded_concepts(text, vision.concept_labels, limit, self._text_key)
        self.register_buffer("concept_bank", concept_bank, persistent=False)
        with torch.no_grad():
            self.sentence_dim = text.sentence(["an image"], limit).shape[-1]
        _add_lora(vision, config.vision_lora, vision.default_lora_targets)
        _add_lora(text, config.text_lora, text.default_lora_targets)
        if config.gradient_checkpointing:
            text.checkpoint_activations()
        dim = config.dim
        feature_dims = [*vision.level_dims, len(FEATURES)]
        self.level_projections = nn.ModuleList(nn.Linear(d, dim) for d in feature_dims)
        self.level_embedding = nn.Parameter(torch.zeros(len(feature_dims), dim))
        self.low_level_residual = (
            LinearResidual(sum(self._low_level_dims(feature_dims)))
            if config.quality_linear
            else None
        )
        self.whole_image_residual = (
            LinearResidual(vision.level_dims[-1]) if config.quality_whole_image else None
        )
        self.alignment_residual = (
            AlignmentResidual(vision.level_dims[-1], self.sentence_dim)
            if config.alignment_linear
            else None
        )
        self.pristine = (
            PristineStatistics(self._pristine_dim(feature_dims)) if config.pristine else None
        )
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
        return not any(p.requires_grad for p in self.vision.tower.parameters())

    def backbone_levels(self, views: torch.Tensor) -> list[torch.Tensor]:
        """The vision backbone's pooled levels of ``(B, V, 3, S, S)`` views, each
        ``(B * V, d)``."""
        return self._per_group(views, self.vision)

    def vision_features(self, views: torch.Tensor) -> list[torch.Tensor]:
        """Pooled backbone levels plus statistics for ``(B, V, 3, S, S)`` views, each level
        ``(B, V, d)``: the part of the forward pass that can be cached while it is frozen."""
        batch, count = views.shape[:2]
        levels = [*self.backbone_levels(views), *self._per_group(views, _statistics)]
        return [level.reshape(batch, count, -1) for level in levels]

    @staticmethod
    def _per_group(views: torch.Tensor, function) -> list[torch.Tensor]:
        """``function`` of the flattened views, concatenated: one image's views at a time
        where :func:`~eliq.devices.one_image_at_a_time` says so."""
        one_by_one = one_image_at_a_time(views.device)
        groups = views.unbind(0) if one_by_one else [views.flatten(0, 1)]
        return [torch.cat(level) for level in zip(*map(function, groups), strict=True)]

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

    @property
    def reads_images(self) -> bool:
        """True for a joint backbone: its text features depend on each image, so they are
        computed with the image's global view and never kept by prompt."""
        return self.text.reads_images

    def text_features(
        self, prompts: Sequence[str | None], images: torch.Tensor | None = None
    ) -> TextFeatures:
        """The instruction built around each prompt, and the bare prompt's embedding. Each
        distinct prompt is encoded once (a training batch repeats its prompts on both sides
        of most pairs); the bare embedding comes from the frozen backbone, so it is kept.
        ``images``: ``(B, 3, S, S)`` global views, which a joint backbone reads with the
        instructions (one per prompt: nothing is shared then)."""
        limit = self.config.max_prompt_tokens
        keys = [prompt_or_none(p) for p in prompts]
        if self.reads_images:
            hidden, padding = self.text([self.config.instruction(k) for k in keys], limit, images)
            sentence = self._sentences(keys, limit, hidden)
            return TextFeatures(self.text_projection(hidden), padding, sentence)
        position = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        distinct = list(position)
        where = torch.tensor([position[k] for k in keys])
        hidden, padding = self.text([self.config.instruction(k) for k in distinct], limit)
        where = where.to(hidden.device)
        sentence = self._sentences(distinct, limit, hidden)
        return TextFeatures(  # index_select: its gradient adds repeats in a fixed order
            self.text_projection(hidden).index_select(0, where),
            padding.index_select(0, where),
            sentence.index_select(0, where),
        )

    def _sentences(self, prompts: list[str | None], limit: int, like: torch.Tensor) -> torch.Tensor:
        """The backbone's own embedding of each prompt (zeros for none), so it stays in the
        concepts' space; kept for the process (:data:`~eliq.critic.text_cache.BACKBONE_TEXT`),
        as neither the backbone nor the prompt changes. Each is embedded alone: batched
        with others, its float bits depend on them (padding, matrix shapes), and a cached
        embedding would then depend on which prompts the process met first, so a training
        resumed in a new process drifted from the uninterrupted run."""
        text_of = {f"{self._text_key}|sentence|{p}": p for p in prompts if p is not None}
        keys = [f"{self._text_key}|sentence|{p}" for p in prompts if p is not None]

        def embed(missing: list[str]) -> list[torch.Tensor]:
            with torch.no_grad(), _adapters_disabled(self.text):
                return [self.text.sentence([text_of[key]], limit)[0] for key in missing]

        embedded = iter(BACKBONE_TEXT.get(keys, embed) if keys else [])
        none = like.new_zeros(self.sentence_dim)
        return torch.stack([none if p is None else next(embedded).to(like.device) for p in prompts])

    def concept_alignment(self, concepts: torch.Tensor | None, sentence: torch.Tensor):
        """``(B,)`` the alignment prior: how well what the views show (``concepts``, see
        :meth:`VisionEncoder.concepts`) matches each prompt (the module docstring says how;
        0 without a prompt or for a backbone with no pre-aligned judgement)."""
        if concepts is None:
            return sentence.new_zeros(len(sentence))
        if self.concept_bank is None:
            return ALIGNMENT_PRIOR_SCALE * (concepts * sentence[:, None]).sum(-1).mean(1)
        per_concept = sentence @ self.concept_bank.T  # (B, concepts)
        if self.config.alignment_evidence:
            shown = torch.einsum("bvc,bc->bv", concepts, per_concept)
            chance = per_concept.mean(-1, keepdim=True)
            return ALIGNMENT_PRIOR_SCALE * (shown - chance).amax(1)
        top = concepts.topk(TOP_CONCEPTS, dim=-1)
        similarity = per_concept.gather(1, top.indices.flatten(1)).view_as(top.values)
        weighted = (similarity * top.values).sum(-1) / top.values.sum(-1)
        return ALIGNMENT_PRIOR_SCALE * weighted.mean(1)

    def prior(self, features: list[torch.Tensor], text: TextFeatures) -> torch.Tensor:
        """``(B, 2)`` the untrained prior of each axis (see the module docstring)."""
        statistics = features[-1]
        crops = statistics[:, 1:] if statistics.shape[1] > 1 else statistics
        sharpness = (
            noise_free_sharpness(crops) if self.config.noise_free_sharpness else crops[..., 0]
        )
        quality = torch.logsumexp(sharpness, dim=1) - math.log(crops.shape[1])
        concepts = self.vision.concepts(features[: len(self.vision.level_dims)])
        if (
            concepts is not None
            and self.concept_bank is not None
            and self.config.recognisability_weight
        ):
            entropy = -(concepts * concepts.clamp_min(1e-12).log()).sum(-1).mean(1)
            quality = quality - self.config.recognisability_weight * entropy
        if self.pristine is not None and self.pristine.fitted:
            crops, texture = self.pristine_inputs(features)
            quality = quality + self.config.pristine.weight * self.pristine.term(crops, texture)
        alignment = self.concept_alignment(concepts, text.sentence)
        return torch.stack([quality, alignment], dim=1)

    def pristine_inputs(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """What the pristine Gaussian reads of each native crop (the global view when it is
        the only one): the first levels and the statistics ``(B, C, dim)``, and the crop's
        texture, its log variance of the Laplacian ``(B, C)``."""
        levels = min(self.config.pristine.levels, len(features) - 1)
        chosen = [*features[:levels], features[-1]]
        crops = [level[:, 1:] if level.shape[1] > 1 else level for level in chosen]
        return torch.cat(crops, dim=-1), crops[-1][..., 0]

    def _pristine_dim(self, feature_dims: list[int]) -> int:
        levels = min(self.config.pristine.levels, len(feature_dims) - 1)
        return sum(feature_dims[:levels]) + feature_dims[-1]

    def residual(self, features: list[torch.Tensor], text: TextFeatures) -> torch.Tensor:
        """``(B, 2)`` what the query transformer and the linear residuals add to the prior."""
        query, linear = self.residual_parts(features, text)
        return query + linear

    def residual_parts(
        self, features: list[torch.Tensor], text: TextFeatures
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The query transformer's ``(B, 2)`` residual and the linear residuals' (low-level
        on quality, bilinear on alignment; zeros where switched off), which training
        regularises apart."""
        visual = self.visual_tokens(features)
        fused = self.fusion(visual, text.tokens, text.padding)
        memory = torch.cat([fused, text.tokens], dim=1)
        padding = torch.cat(
            [torch.zeros(visual.shape[:2], dtype=torch.bool, device=visual.device), text.padding],
            dim=1,
        )
        levels = len(features)
        high_level = torch.zeros(levels, dtype=torch.bool)
        if self.config.quality_levels is not None:
            high_level[self.config.quality_levels : levels - 1] = True  # statistics stay
        hidden = torch.cat(
            [high_level.repeat(features[0].shape[1]), torch.zeros(text.tokens.shape[1], dtype=bool)]
        )
        query = self.query_transformer(memory, padding, hidden)
        quality = alignment = query.new_zeros(len(query))
        whole = features[len(self.vision.level_dims) - 1][:, 0]  # the global view's last level
        if self.low_level_residual is not None:
            low = [features[i] for i in self._low_level_indices(len(features))]
            quality = self.low_level_residual(torch.cat([_crop_mean(level) for level in low], -1))
        if self.whole_image_residual is not None:
            quality = quality + self.whole_image_residual(whole)
        if self.alignment_residual is not None:
            alignment = self.alignment_residual(whole, text.sentence)
        return query, torch.stack([quality, alignment], dim=1)

    def ridge_weights(self) -> list[torch.Tensor]:
        """The linear residuals' weights, which training penalises (ridge)."""
        return [r.ridge_weight for _, r in self._linear_residuals()]

    def _linear_residuals(self) -> list[tuple[str, _Standardised]]:
        return [(n, m) for n, m in self.named_children() if isinstance(m, _Standardised)]

    def _low_level_indices(self, levels: int) -> list[int]:
        """The backbone levels the quality axis reads, plus the statistics (last)."""
        first = levels - 1 if self.config.quality_levels is None else self.config.quality_levels
        return [*range(min(first, levels - 1)), levels - 1]

    def _low_level_dims(self, feature_dims: list[int]) -> list[int]:
        return [feature_dims[i] for i in self._low_level_indices(len(feature_dims))]

    def score_features(self, features: list[torch.Tensor], text: TextFeatures) -> torch.Tensor:
        return self.prior(features, text) + self.residual(features, text)

    def forward(self, views: torch.Tensor, prompts: Sequence[str | None]) -> torch.Tensor:
        text = self.text_features(prompts, views[:, 0] if self.reads_images else None)
        return self.score_features(self.vision_features(views), text)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Everything a checkpoint must hold: the backbones' own weights are loaded by name;
        the linear residuals' feature statistics and the pristine Gaussian are learnt too."""
        state = {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}
        fitted = [*self._linear_residuals()]
        if self.pristine is not None:
            fitted.append(("pristine", self.pristine))
        for name, module in fitted:
            for buffer_name, buffer in module.named_buffers():
                state[f"{name}.{buffer_name}"] = buffer.detach()
        return state


def _crop_mean(level: torch.Tensor) -> torch.Tensor:
    """``(B, V, d) -> (B, d)``: the mean over the native crops (the global view when alone)."""
    return (level[:, 1:] if level.shape[1] > 1 else level).mean(dim=1)


def _statistics(views: torch.Tensor) -> tuple[torch.Tensor]:
    """:func:`view_statistics` as a one-level list, as the backbone returns its levels."""
    return (view_statistics(views),)


@contextmanager
def _adapters_disabled(module: nn.Module) -> Iterator[None]:
    layers = [m for m in module.modules() if isinstance(m, BaseTunerLayer)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


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
