"""A tiny, randomly initialised Stable Diffusion pipeline built and saved offline.

Its CLIP tokenizer (see tiny_clip.py) has a byte-level vocabulary, so it needs no download.
"""

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from tests.tiny_clip import byte_level_clip_tokenizer


def build_tiny_pipeline(folder: Path, safe: bool = True) -> Path:
    torch.manual_seed(0)
    tokenizer = byte_level_clip_tokenizer()
    vocab = tokenizer.get_vocab()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(vocab),
            max_position_embeddings=77,
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=8,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder, safe_serialization=safe)
    return folder


def save_single_file(pipeline_folder: Path, path: Path) -> Path:
    """The pipeline as one original-layout (LDM) safetensors file, as Civitai hosts them:
    diffusers' own single-file converters map it back (the inverse of their key renames)."""
    from safetensors.torch import save_file

    pipeline = StableDiffusionPipeline.from_pretrained(pipeline_folder)
    layers = pipeline.unet.config.layers_per_block
    ldm = {}
    for key, value in pipeline.unet.state_dict().items():
        ldm["model.diffusion_model." + _unet_key(key, layers, pipeline.unet)] = value
    vae_blocks = len(pipeline.vae.config.up_block_types)
    for key, value in pipeline.vae.state_dict().items():
        ldm["first_stage_model." + _vae_key(key, vae_blocks)] = value
    for key, value in pipeline.text_encoder.state_dict().items():  # the original CLIP layout
        ldm["cond_stage_model.transformer.text_model." + key.removeprefix("text_model.")] = value
    save_file({k: v.contiguous() for k, v in ldm.items()}, path)
    return path


_UNET_LAYERS = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"),
                ("conv_shortcut", "skip_connection")]  # fmt: skip


def _renamed(rest: str, renames) -> str:
    for new, old in renames:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def _unet_key(key: str, layers: int, unet) -> str:
    head, _, param = key.rpartition(".")
    if head in _UNET_LAYERS:
        return f"{_UNET_LAYERS[head]}.{param}"
    parts = key.split(".")
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "resnets":
            return f"middle_block.{0 if index == 0 else 2}.{_renamed(rest, _UNET_RESNET)}"
        return f"middle_block.1.{rest}"
    side, block, kind = parts[0], int(parts[1]), parts[2]
    rest = ".".join(parts[4:])
    if side == "down_blocks":
        if kind == "downsamplers":
            return f"input_blocks.{(block + 1) * (layers + 1)}.0.op.{parts[-1]}"
        at = block * (layers + 1) + int(parts[3]) + 1
        return (
            f"input_blocks.{at}.0.{_renamed(rest, _UNET_RESNET)}"
            if kind == "resnets"
            else f"input_blocks.{at}.1.{rest}"
        )
    if kind == "upsamplers":
        slot = 2 if hasattr(unet.up_blocks[block], "attentions") else 1
        return f"output_blocks.{block * (layers + 1) + layers}.{slot}.conv.{parts[-1]}"
    at = block * (layers + 1) + int(parts[3])
    return (
        f"output_blocks.{at}.0.{_renamed(rest, _UNET_RESNET)}"
        if kind == "resnets"
        else f"output_blocks.{at}.1.{rest}"
    )


_VAE_ATTENTION = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                  ("to_out.0", "proj_out")]  # fmt: skip


def _vae_key(key: str, blocks: int) -> str:
    side, rest = key.split(".", 1)
    if side in ("quant_conv", "post_quant_conv"):
        return key
    if rest.startswith("conv_norm_out."):
        return f"{side}.norm_out." + rest.split(".", 1)[1]
    if rest.startswith(("conv_in.", "conv_out.")):
        return key
    parts = rest.split(".")
    if parts[0] == "mid_block":
        if parts[1] == "resnets":
            inner = ".".join(parts[3:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(parts[2]) + 1}.{inner}"
        return f"{side}.mid.attn_1.{_renamed('.'.join(parts[3:]), _VAE_ATTENTION)}"
    block = int(parts[1])
    level = block if side == "encoder" else blocks - 1 - block
    name = "down" if side == "encoder" else "up"
    if parts[2] in ("downsamplers", "upsamplers"):
        sampler = "downsample" if side == "encoder" else "upsample"
        return f"{side}.{name}.{level}.{sampler}.conv.{parts[-1]}"
    inner = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
    return f"{side}.{name}.{level}.block.{parts[3]}.{inner}"
