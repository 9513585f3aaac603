"""A multimodal LLM as the critic's backbone: the paper's setting.

Any image-text-to-text model that transformers runs natively (Qwen2-VL, Idefics3 /
SmolVLM, LLaVA, ...), by hub id or folder, loaded with ``AutoModelForImageTextToText`` and
``AutoProcessor`` at a pinned revision, from safetensors only and never with the model's
own code (``trust_remote_code`` stays off; a model that needs it is refused).

* The **joint** side (``text_backbone: joint``) puts each image and its instruction through
  the model's own chat template ("Rate the visual quality of this image and how well it
  matches: ...") and returns the language model's last hidden states over the image and
  instruction tokens: the tokens the Quality Query Transformer reads.
* The **vision** side returns the vision tower's features at three depths (mean- and
  std-pooled over patches), per view, which the gated fusion mixes in. Nothing pre-aligned
  comes with it: the alignment prior is 0 and the critic learns alignment from its pairs.
* LoRA goes on the language model's attention projections (``q_proj``, ``v_proj``) and,
  with vision LoRA on, on the vision tower's; their names are resolved from the model.
* On CUDA the model runs in bfloat16; the critic's own parts stay float32.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from eliq.backbones.base import Backbones, TextEncoder, VisionEncoder, pool
from eliq.backbones.revision import hf_revision

VISION_TOWERS = ("vision_tower", "vision_model", "visual")
LM_ATTENTION = ("q_proj", "v_proj")
VISION_ATTENTION = ("q_proj", "v_proj", "qkv")


class RemoteCodeRefused(ValueError):
    """A checkpoint that only runs with its own Python code, which eliq never executes."""


class VlmModel(nn.Module):
    """The model and its processor, shared by the vision and joint sides."""

    def __init__(self, name_or_path: str | Path, revision: str | None = None) -> None:
        super().__init__()
        from transformers import AutoModelForImageTextToText, AutoProcessor

        name = str(name_or_path)
        refuse_remote_code(name, revision)
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(
            name, revision=revision, use_safetensors=True, trust_remote_code=False, dtype=dtype
        )
        self.processor = AutoProcessor.from_pretrained(
            name, revision=revision, trust_remote_code=False
        )
        self.revision = hf_revision(name, revision)
        names = {module: key for key, module in self.model.named_modules()}
        self.language_prefix = names[self.model.get_decoder()]
        tower = next(
            (getattr(self.model.model, a) for a in VISION_TOWERS if hasattr(self.model.model, a)),
            None,
        )
        if tower is None:
            raise ValueError(f"{name}: no vision tower found (looked for {VISION_TOWERS})")
        self.vision_prefix = names[tower]
        self.vision_layers = max(
            (m for m in tower.modules() if isinstance(m, nn.ModuleList)), key=len
        )

    @property
    def base(self) -> nn.Module:
        """The model without its language-modelling head: hidden states, no logits."""
        return self.model.model

    @property
    def device(self) -> torch.device:
        return self.model.device

    def chat(self, instruction: str) -> str:
        """One user turn of an image and ``instruction``, in the model's own template."""
        message = [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": instruction}],
            }
        ]
        return self.processor.apply_chat_template(message, add_generation_prompt=True)

    def inputs(self, batch: dict) -> dict:
        """The processor's tensors on the model's device, pixels in its dtype."""
        dtype = self.model.dtype
        return {
            key: value.to(self.device, dtype if value.is_floating_point() else None)
            for key, value in batch.items()
        }

    def truncated(self, text: str, max_tokens: int) -> str:
        """``text`` cut to ``max_tokens`` tokens (the image's tokens are never cut)."""
        tokenizer = self.processor.tokenizer
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


def to_pil(view: torch.Tensor) -> Image.Image:
    """A ``(3, S, S)`` view in [0, 1] as the image the processor expects."""
    pixels = (view.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(np.ascontiguousarray(pixels.permute(1, 2, 0).cpu().numpy()))


class VlmVision(VisionEncoder):
    exportable = False  # each view goes through the model's image processor

    def __init__(self, vlm: VlmModel) -> None:
        super().__init__()
        self.vlm = vlm
        layers = len(vlm.vision_layers)
        self.depths = sorted({max(1, layers // 3), max(1, 2 * layers // 3), layers})
        prefix = re.escape(vlm.vision_prefix)
        self.default_lora_targets = rf".*{prefix}\..*\.({'|'.join(VISION_ATTENTION)})"
        with torch.no_grad():
            self.level_dims = [level.shape[-1] for level in self(torch.zeros(1, 3, 64, 64))]

    def forward(self, views: torch.Tensor) -> list[torch.Tensor]:
        """Each view through the vision tower on its own (towers differ in how they batch
        and tile images), its chosen layers' outputs pooled over every patch."""
        per_view = [self._levels(view) for view in views]
        return [torch.stack(level) for level in zip(*per_view, strict=True)]

    def _levels(self, view: torch.Tensor) -> list[torch.Tensor]:
        captured: dict[int, torch.Tensor] = {}

        def keep(depth: int):
            def hook(_module, _inputs, output):
                captured[depth] = output[0] if isinstance(output, tuple) else output

            return hook

        hooks = [
            self.vlm.vision_layers[depth - 1].register_forward_hook(keep(depth))
            for depth in self.depths
        ]
        try:
            images = self.vlm.processor.image_processor(
                images=[[to_pil(view)]], return_tensors="pt"
            )
            self.vlm.base.get_image_features(**self.vlm.inputs(dict(images)))
        finally:
            for hook in hooks:
                hook.remove()
        return [
            pool(captured[d].float().reshape(1, -1, captured[d].shape[-1]), (1,))[0]
            for d in self.depths
        ]

    def concepts(self, levels: list[torch.Tensor]) -> None:
        return None

    @property
    def tower(self) -> nn.Module:
        return self.vlm.model.get_submodule(self.vlm.vision_prefix)


class VlmJoint(TextEncoder):
    """The language model reading each image with its instruction."""

    reads_images = True

    def __init__(self, vlm: VlmModel) -> None:
        super().__init__()
        self.vlm = vlm
        self.dim = vlm.model.config.get_text_config().hidden_size
        self.checkpointing = False
        prefix = re.escape(vlm.language_prefix)
        self.default_lora_targets = rf".*{prefix}\..*\.({'|'.join(LM_ATTENTION)})"

    def forward(
        self, texts: list[str], max_tokens: int, images: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if images is None or len(images) != len(texts):
            raise ValueError("a joint backbone reads each instruction with its image")
        chats = [self.vlm.chat(self.vlm.truncated(text, max_tokens)) for text in texts]
        batch = self.vlm.processor(
            text=chats,
            images=[[to_pil(image)] for image in images],
            return_tensors="pt",
            padding=True,
        )
        batch = self.vlm.inputs(dict(batch))
        hidden = self.vlm.base(**batch, use_cache=False).last_hidden_state.float()
        return hidden, batch["attention_mask"] == 0

    def checkpoint_activations(self) -> None:
        self.vlm.model.activation_checkpointing_enable({"use_reentrant": False})
        self.checkpointing = True

    def train(self, mode: bool = True) -> VlmJoint:
        """As every backbone, in inference mode; but transformers recomputes activations
        only in a training layer, so with checkpointing the language model trains in
        training mode (its own dropout, 0 in the usual VLMs, then applies)."""
        super().train(mode)
        if self.checkpointing:
            self.vlm.model.get_decoder().train(mode)
        return self

    def sentence(self, texts: list[str], max_tokens: int) -> torch.Tensor:
        """The language model's mean hidden state over the bare text."""
        tokenizer = self.vlm.processor.tokenizer
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
        )
        batch = self.vlm.inputs({k: batch[k] for k in ("input_ids", "attention_mask")})
        hidden = self.vlm.base(**batch, use_cache=False).last_hidden_state.float()
        keep = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * keep).sum(1) / keep.sum(1).clamp_min(1), dim=-1)


class VlmFamily:
    """``vision_backbone``: a multimodal LLM's folder or hub id; ``text_backbone``:
    ``joint`` (the model reads image and text together)."""

    def claims(self, vision: str, text: str) -> bool:
        return text == "joint"

    def load(self, vision: str, text: str, revision: str | None = None) -> Backbones:
        if text != "joint":
            raise ValueError(
                f"a multimodal LLM reads text itself: text_backbone 'joint', not {text!r}"
            )
        vlm = VlmModel(vision, revision)
        return Backbones(VlmVision(vlm), VlmJoint(vlm), vlm.revision)


def refuse_remote_code(name: str, revision: str | None = None) -> None:
    """Raise :class:`RemoteCodeRefused` for a checkpoint whose config asks for its own code
    or names an architecture transformers does not run natively."""
    from transformers import PretrainedConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    config, _ = PretrainedConfig.get_config_dict(name, revision=revision)
    model_type = config.get("model_type")
    if "auto_map" in config or model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise RemoteCodeRefused(
            f"{name} needs its own code to run (model_type {model_type!r}"
            + (", auto_map in its config" if "auto_map" in config else "")
            + "); eliq never runs a checkpoint's code (trust_remote_code): choose a "
            "multimodal model that transformers supports natively"
        )
