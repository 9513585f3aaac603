import pytest
import torch

from eliq.critic import Critic, CriticConfig, LoraSettings
from eliq.critic.views import crop_origins, make_views
from tests.conftest import photo_path
from tests.tiny_clip import build_tiny_clip

SMALL = CriticConfig(crops=2, dim=64, decoder_layers=1)


def same_scores(a, b):
    """Equal up to float noise (text tokens may be encoded in batches of other shapes)."""
    assert [s.alignment is None for s in a] == [s.alignment is None for s in b]
    flat = (
        [(s.quality, s.alignment or 0.0) for s in a],
        [(s.quality, s.alignment or 0.0) for s in b],
    )
    return torch.allclose(torch.tensor(flat[0]), torch.tensor(flat[1]), atol=1e-5)


@pytest.fixture(scope="module")
def critic():
    return Critic.from_config(SMALL, device="cpu")


def test_views_keep_native_resolution(photos):
    image = photos[0]  # 512 x 512
    views = make_views(image, 224, 4)
    assert views.shape == (5, 3, 224, 224)
    origins = crop_origins(512, 512, 224, 4)
    assert origins == [(0, 0), (0, 288), (288, 0), (288, 288)]
    for view, (y, x) in zip(views[1:], origins, strict=True):
        assert torch.equal(view, image[:, y : y + 224, x : x + 224])
    small = make_views(torch.rand(3, 100, 150), 224, 2)
    assert small.shape == (3, 3, 224, 224)


def test_scores_have_two_axes_and_prompts_are_optional(critic):
    images = [photo_path("chelsea.png"), photo_path("coffee.png"), photo_path("rocket.jpg")]
    scores = critic.score(images, ["a tabby cat", None, "a rocket on a launch pad"])
    assert [s.alignment is None for s in scores] == [False, True, False]
    assert all(isinstance(s.quality, float) for s in scores)
    assert critic.score(images[:1])[0].alignment is None
    with pytest.raises(ValueError, match="prompts"):
        critic.score(images, ["only one"])


def test_lora_and_heads_train_backbones_stay_frozen(critic):
    trainable = [n for n, p in critic.model.named_parameters() if p.requires_grad]
    assert any("vision" in n and "lora_" in n for n in trainable)
    assert any("text" in n and "lora_" in n for n in trainable)
    assert not any(("vision." in n or "text." in n) and "lora_" not in n for n in trainable)
    assert any(n.startswith("query_transformer") for n in trainable)
    assert any(n.startswith("fusion") for n in trainable)


def test_save_and_load_are_symmetric(critic, tmp_path):
    with torch.no_grad():
        for parameter in critic.model.query_transformer.parameters():
            parameter.add_(0.01)  # make it differ from a fresh critic
    critic.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = Critic.from_pretrained(tmp_path / "ckpt", device="cpu")
    images = [photo_path("astronaut.png"), photo_path("coffee.png")]
    prompts = ["an astronaut", None]
    assert same_scores(loaded.score(images, prompts), critic.score(images, prompts))
    other = Critic.from_config(SMALL.model_copy(update={"dim": 32}), device="cpu")
    with pytest.raises(ValueError, match="does not fit"):
        other.load_trainable_state(critic.model.trainable_state())
    with pytest.raises(FileNotFoundError):
        Critic.from_pretrained(tmp_path, device="cpu")


def test_text_encodings_are_cached(critic):
    critic._text_cache.clear()
    image = photo_path("chelsea.png")
    critic.score([image, image, image], ["a cat", "a cat", None])
    assert len(critic._text_cache) == 2


def test_clip_family_backbone_from_a_local_checkpoint(tmp_path):
    folder = build_tiny_clip(tmp_path / "tiny-clip")
    config = CriticConfig(
        vision_backbone=str(folder),
        text_backbone="clip",
        crops=2,
        dim=32,
        view_size=64,
        decoder_layers=1,
        vision_lora=LoraSettings(rank=2),
        text_lora=LoraSettings(rank=2),
    )
    critic = Critic.from_config(config, device="cpu")
    trainable = [n for n, p in critic.model.named_parameters() if p.requires_grad]
    assert any("vision_model" in n and "lora_" in n for n in trainable)
    assert any("text_model" in n and "lora_" in n for n in trainable)
    scores = critic.score([photo_path("chelsea.png")], ["a cat"])
    critic.save_pretrained(tmp_path / "ckpt")
    reloaded = Critic.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert same_scores(reloaded.score([photo_path("chelsea.png")], ["a cat"]), scores)
    with pytest.raises(ValueError, match="needs a CLIP"):
        Critic.from_config(CriticConfig(text_backbone="clip"), device="cpu")
