"""A tiny, randomly initialised CLIP checkpoint saved offline, with a byte-level tokenizer."""

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from eliq.critic import CriticConfig, LoraSettings


def byte_level_clip_tokenizer() -> CLIPTokenizer:
    characters = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(characters)}
    vocab.update({c + "</w>": len(characters) + i for i, c in enumerate(characters)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_tiny_clip(folder: Path) -> Path:
    torch.manual_seed(0)
    tokenizer = byte_level_clip_tokenizer()
    vocab = tokenizer.get_vocab()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_clip_critic_config(folder: Path) -> CriticConfig:
    """A small critic on the tiny CLIP at ``folder``, LoRA on both towers."""
    return CriticConfig(
        vision_backbone=str(folder),
        text_backbone="clip",
        crops=2,
        dim=32,
        view_size=64,
        decoder_layers=1,
        vision_lora=LoraSettings(rank=2),
        text_lora=LoraSettings(rank=2),
    )
