"""Tiny randomly initialised models for tests and for trying a pipeline without a hub.

:func:`build_tiny_vlm` writes a multimodal LLM of a real architecture (transformers'
own classes, random weights, a few hundred thousand parameters) with a working processor,
tokenizer and chat template, offline, to a folder that ``from_pretrained`` (and a critic's
``vision_backbone``) reads like a hub checkpoint. Its scores mean nothing; its shapes, code
paths and file layout are the real model's.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from eliq.critic.config import PAIRED_INSTRUCTION, QUALITY_INSTRUCTION

CORPUS = [
    QUALITY_INSTRUCTION,
    PAIRED_INSTRUCTION.format(prompt="a red apple on a wooden table"),
    "a photograph of a cat sitting on a sofa in the evening light",
    "two people walking a dog along a beach at sunset, oil painting",
    "a blue car parked in the snow next to a small house",
]
TEXT = {
    "vocab_size": 0,  # the tokenizer's
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}
VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
}


def build_tiny_vlm(
    folder: str | Path,
    architecture: str = "idefics3",
    seed: int = 0,
    text: Mapping[str, int] | None = None,
    vision: Mapping[str, int] | None = None,
) -> Path:
    """Save a random VLM of ``architecture`` (:data:`ARCHITECTURES`) to ``folder`` with its
    processor; returns the folder. ``text`` and ``vision`` override the tiny shapes
    (:data:`TEXT`, :data:`VISION`: hidden sizes, layers, heads), e.g. for a model of
    realistic size to measure speed and memory."""
    if architecture not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    folder = Path(folder)
    shapes = {**TEXT, **(text or {})}, {**VISION, **(vision or {})}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, processor = ARCHITECTURES[architecture](*shapes)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _tokenizer(special: list[str], pad: str, eos: str):
    """A byte-level BPE trained on :data:`CORPUS`, with the architecture's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320 + len(special),
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=pad, eos_token=eos)
    fast.add_special_tokens(
        {"additional_special_tokens": [t for t in special if t not in (pad, eos)]}
    )
    return fast


def _text_config(text: Mapping[str, int], tokenizer) -> dict:
    return {**text, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}


def _idefics3(text: Mapping[str, int], vision: Mapping[str, int]):
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    grid = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    special = [
        "<pad>",
        "<end_of_utterance>",
        "<image>",
        "<fake_token_around_image>",
        "<global-img>",
    ]
    tokenizer = _tokenizer([*special, *grid], "<pad>", "<end_of_utterance>")
    size, patch = 224, 16
    config = Idefics3Config(
        text_config={"model_type": "llama", **_text_config(text, tokenizer)},
        vision_config={**vision, "image_size": size, "patch_size": patch},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    template = (
        "{% for message in messages %}{{ message['role'] | capitalize }}:"
        "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>"
        "{% else %} {{ content['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
        "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
    )
    images = Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": size},
        max_image_size={"longest_edge": size},
    )
    processor = Idefics3Processor(
        image_processor=images,
        tokenizer=tokenizer,
        image_seq_len=(size // patch) ** 2 // 4,
        chat_template=template,
    )
    return Idefics3ForConditionalGeneration(config), processor


def _llava(text: Mapping[str, int], vision: Mapping[str, int]):
    from transformers import (
        CLIPImageProcessorPil,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = _tokenizer(["<pad>", "</s>", "<image>"], "<pad>", "</s>")
    size, patch = 224, 16
    config = LlavaConfig(
        text_config={"model_type": "llama", **_text_config(text, tokenizer)},
        vision_config={
            "model_type": "clip_vision_model",
            **vision,
            "image_size": size,
            "patch_size": patch,
            "projection_dim": vision["hidden_size"],
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
    )
    template = (
        "{% for message in messages %}{{ message['role'] | upper }}: "
        "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>\n"
        "{% else %}{{ content['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    images = CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=template,
    )
    return LlavaForConditionalGeneration(config), processor


def _qwen2_vl(text: Mapping[str, int], vision: Mapping[str, int]):
    if importlib.util.find_spec("torchvision") is None:
        raise RuntimeError(
            "a Qwen2-VL processor needs torchvision (transformers' Qwen2-VL video processor "
            "imports it): install the torchvision that matches your torch"
        )
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    special = ["<|endoftext|>", "<|im_end|>", "<|im_start|>", "<|vision_start|>"]
    special += ["<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = _tokenizer(special, "<|endoftext|>", "<|im_end|>")
    token = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            **_text_config(text, tokenizer),
            "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},
        },
        vision_config={
            "depth": vision["num_hidden_layers"],
            "embed_dim": vision["hidden_size"],
            "hidden_size": text["hidden_size"],
            "num_heads": vision["num_attention_heads"],
            "mlp_ratio": vision["intermediate_size"] / vision["hidden_size"],
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=token("<|image_pad|>"),
        video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"),
        vision_end_token_id=token("<|vision_end|>"),
    )
    template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
        "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ content['text'] }}{% endif %}"
        "{% endfor %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    pixels = {"min_pixels": 56 * 56, "max_pixels": 224 * 224}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=template,
    )
    return Qwen2VLForConditionalGeneration(config), processor


ARCHITECTURES: dict[str, Callable[[Mapping[str, int], Mapping[str, int]], tuple]] = {
    "idefics3": _idefics3,
    "llava": _llava,
    "qwen2_vl": _qwen2_vl,
}
"""Architectures :func:`build_tiny_vlm` builds, by transformers' ``model_type``. Qwen2-VL's
processor needs torchvision."""
