"""A randomly initialised VLM of realistic shape and a critic config on it, for measuring
the VLM family's speed and memory where no hub is reachable.

    python bench/random_vlm.py --shape 400m --out data/bench-vlm
    python bench/critic_speed.py --critic-config data/bench-vlm/critic.json --device cuda

``--shape 400m`` is Idefics3 with SmolVLM-500M's language model (960 wide, 32 layers) and a
SigLIP-base vision tower (768 wide, 12 layers) at 224 px: about 0.4 B parameters. ``tiny``
is the test suite's model. The weights are random, so scores mean nothing; the shapes, and
so the time and memory, are the real model's.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from eliq.critic import CriticConfig, LoraSettings
from eliq.testing import build_tiny_vlm

SHAPES = {
    "tiny": ({}, {}),
    "400m": (
        {
            "hidden_size": 960,
            "intermediate_size": 2560,
            "num_hidden_layers": 32,
            "num_attention_heads": 15,
            "num_key_value_heads": 5,
        },
        {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
        },
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="400m")
    parser.add_argument("--architecture", default="idefics3")
    parser.add_argument("--out", type=Path, default=Path("data/bench-vlm"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    text, vision = SHAPES[args.shape]
    model = build_tiny_vlm(args.out / "model", args.architecture, text=text, vision=vision)
    config = CriticConfig(
        vision_backbone=str(model.resolve()),
        text_backbone="joint",
        vision_lora=LoraSettings(enabled=False),  # vision features cached, as in the recipe
    )
    path = args.out / "critic.json"
    path.write_text(config.model_dump_json(indent=2))
    logging.info("wrote %s (model in %s)", path, model)


if __name__ == "__main__":
    main()
