import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eliq.critic import Critic, CriticConfig
from eliq.critic.exported_vision import ExportedVision
from eliq.critic.model import embedded_concepts
from eliq.critic.statistics import (
    FEATURES,
    immerkaer,
    laplacian,
    noise_free_sharpness,
    variance,
    view_statistics,
)
from eliq.critic.views import crop_origins, make_views
from eliq.imageio import ImageLoadError, load_image
from tests.conftest import photo_path
from tests.tiny_clip import build_tiny_clip, tiny_clip_critic_config

SMALL = CriticConfig(crops=2, dim=64, decoder_layers=1)


def same_scores(a, b):
    """Equal up to float noise (text tokens may be encoded in batches of other shapes)."""
    assert [s.alignment is None for s in a] == [s.alignment is None for s in b]
    flat = (
        [(s.quality, s.alignment or 0.0) for s in a],
        [(s.quality, s.alignment or 0.0) for s in b],
    )
    return torch.allclose(torch.tensor(flat[0]), torch.tensor(flat[1]), atol=1e-5)


@contextmanager
def configured(model, **update):
    """The (module-shared) critic model with ``update`` applied to its config, restored
    after, even when the block fails."""
    before = model.config
    model.config = before.model_copy(update=update)
    try:
        yield model
    finally:
        model.config = before


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
    assert loaded.fingerprint() == critic.fingerprint()  # what it scored can be reused
    fresh = Critic.from_config(SMALL, device="cpu")
    assert fresh.fingerprint() != critic.fingerprint()
    other = Critic.from_config(SMALL.model_copy(update={"dim": 32}), device="cpu")
    with pytest.raises(ValueError, match="does not fit"):
        other.load_trainable_state(critic.model.trainable_state())
    with pytest.raises(FileNotFoundError):
        Critic.from_pretrained(tmp_path, device="cpu")


def test_text_encodings_are_cached(critic):
    critic._texts.clear()
    image = photo_path("chelsea.png")
    critic.score([image, image, image], ["a cat", "a cat", None])
    assert len(critic._texts) == 2


def test_clip_family_backbone_from_a_local_checkpoint(tmp_path):
    folder = build_tiny_clip(tmp_path / "tiny-clip")
    config = tiny_clip_critic_config(folder)
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


def test_priors_rank_sharpness_and_matching_prompts_before_any_training(critic):
    """The untrained critic already prefers a sharp image to its blurred copy (quality) and
    the prompt that names what the photo shows to one that does not (alignment)."""
    import kornia

    from eliq.imageio import load_image

    image = load_image(photo_path("chelsea.png"))
    blurred = kornia.filters.gaussian_blur2d(image[None], (9, 9), (3.0, 3.0))[0]
    sharp_score, blurred_score = critic.score([image, blurred])
    assert sharp_score.quality > blurred_score.quality
    cat, rocket = critic.score([image, image], ["a tabby cat", "a rocket on a launch pad"])
    assert cat.alignment > rocket.alignment


def test_prompt_embedding_ignores_the_text_adapters(critic):
    """The alignment prior compares the prompt with ImageNet class names embedded by the
    backbone as pre-trained, so tuning the text LoRA must not move the prompt's embedding."""
    before = critic.model.text_features(["a tabby cat"]).sentence
    lora = [p for n, p in critic.model.text.named_parameters() if "lora_B" in n]
    with torch.no_grad():
        for parameter in lora:
            parameter.add_(0.05)
    after = critic.model.text_features(["a tabby cat"])
    with torch.no_grad():
        for parameter in lora:
            parameter.sub_(0.05)
    assert torch.allclose(before, after.sentence)
    assert all(p.requires_grad for p in lora)


def test_an_untrained_critic_scores_its_prior():
    model = Critic.from_config(SMALL, device="cpu").model
    views = torch.stack([make_views(torch.rand(3, 300, 400), 224, SMALL.crops)])
    with torch.inference_mode():
        features = model.vision_features(views)
        text = model.text_features(["a red fox"])
        assert torch.equal(model.score_features(features, text), model.prior(features, text))


def test_quality_reads_only_low_levels():
    """With ``quality_levels`` = 3 the query transformer's quality residual ignores
    MobileNetV2's semantic stages (the prior's recognisability term and the whole-image
    linear residual read them by design, so they are compared apart); alignment still
    reads them."""
    critic = Critic.from_config(SMALL, device="cpu")
    model = critic.model.eval()
    with torch.no_grad():
        for head in model.query_transformer.heads:
            head[1].weight.normal_()
    views = torch.stack([critic.views(photo_path("coffee.png"))])
    with torch.inference_mode():
        features = model.vision_features(views)
        text = model.text_features(["a cup of coffee"])
        base, _ = model.residual_parts(features, text)
        changed = [*features[:3], *(f + torch.randn_like(f) for f in features[3:-1]), features[-1]]
        moved, _ = model.residual_parts(changed, text)
        prior_moved = model.prior(changed, text)[:, 0] != model.prior(features, text)[:, 0]
    assert torch.allclose(base[:, 0], moved[:, 0], atol=1e-5)
    assert not torch.allclose(base[:, 1], moved[:, 1], atol=1e-3)
    assert prior_moved.all()  # the recognisability term sees what the image shows


def test_low_level_residual_starts_at_zero_and_its_statistics_are_saved(tmp_path):
    config = SMALL.model_copy(update={"quality_linear": True})
    critic = Critic.from_config(config, device="cpu")
    model = critic.model
    views = torch.stack([make_views(torch.rand(3, 300, 400), 224, config.crops) for _ in range(3)])
    with torch.no_grad():
        features = model.vision_features(views)
        text = model.text_features([None, "a fox", None])
        assert torch.equal(model.score_features(features, text), model.prior(features, text))
        model.train()
        model.residual(features, text)  # gathers feature statistics, as training does
        model.eval()
        model.low_level_residual.linear.weight.normal_()
    assert int(model.low_level_residual.scale.num_batches_tracked) == 1
    images = [photo_path("coffee.png"), photo_path("rocket.jpg")]
    critic.save_pretrained(tmp_path / "ckpt")
    loaded = Critic.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert same_scores(loaded.score(images), critic.score(images))
    fresh = Critic.from_config(config, device="cpu")
    assert not same_scores(fresh.score(images), critic.score(images))


def test_whole_image_residual_reads_the_global_views_last_level(tmp_path):
    """A linear quality correction from what the whole image shows: zero while untrained,
    moved by the global view's last level only, saved, and absent from a checkpoint saved
    before it existed."""
    config = SMALL.model_copy(update={"quality_whole_image": True})
    critic = Critic.from_config(config, device="cpu")
    model = critic.model
    views = torch.stack([make_views(torch.rand(3, 300, 400), 224, config.crops) for _ in range(3)])
    last = len(model.vision.level_dims) - 1
    with torch.no_grad():
        features = model.vision_features(views)
        text = model.text_features([None, "a fox", None])
        assert torch.equal(model.score_features(features, text), model.prior(features, text))
        model.train()
        model.residual(features, text)
        model.eval()
        model.whole_image_residual.linear.weight.normal_()
        _, linear = model.residual_parts(features, text)
        assert (linear[:, 0] != 0).all()
        crops_changed = [f.clone() for f in features]
        crops_changed[last][:, 1:] += 1.0
        _, unchanged = model.residual_parts(crops_changed, text)
        assert torch.allclose(unchanged[:, 0], linear[:, 0])
        whole_changed = [f.clone() for f in features]
        whole_changed[last][:, 0] += 1.0
        _, moved = model.residual_parts(whole_changed, text)
        assert not torch.allclose(moved[:, 0], linear[:, 0])
    images = [photo_path("coffee.png"), photo_path("rocket.jpg")]
    critic.save_pretrained(tmp_path / "ckpt")
    loaded = Critic.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert same_scores(loaded.score(images), critic.score(images))
    Critic.from_config(SMALL, device="cpu").save_pretrained(tmp_path / "old")
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    del saved["quality_whole_image"]  # as written before the field existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    assert Critic.from_pretrained(tmp_path / "old", device="cpu").model.whole_image_residual is None


def test_alignment_residual_reads_the_image_against_the_prompt(tmp_path):
    """A bilinear map from the global view's last level to the prompt's embedding: zero
    while untrained and without a prompt, its statistics saved, and a checkpoint saved
    before it existed loads as a critic without it."""
    critic = Critic.from_config(SMALL, device="cpu")
    model = critic.model
    views = torch.stack([make_views(torch.rand(3, 300, 400), 224, SMALL.crops) for _ in range(3)])
    with torch.no_grad():
        features = model.vision_features(views)
        text = model.text_features(["a red fox", "a blue car", None])
        assert torch.equal(model.score_features(features, text), model.prior(features, text))
        model.train()
        model.residual(features, text)
        model.eval()
        model.alignment_residual.weight.normal_()
        _, linear = model.residual_parts(features, text)
        assert (linear[:2, 1] != 0).all() and linear[2, 1] == 0
        crops_changed = [f.clone() for f in features]
        crops_changed[-2][:, 1:] += 1.0  # the residual reads the global view only
        _, unchanged = model.residual_parts(crops_changed, text)
        assert torch.allclose(unchanged[:, 1], linear[:, 1])
    assert len(model.ridge_weights()) == 2
    images, prompts = [photo_path("coffee.png"), photo_path("rocket.jpg")], ["a cup", "a rocket"]
    critic.save_pretrained(tmp_path / "ckpt")
    loaded = Critic.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert same_scores(loaded.score(images, prompts), critic.score(images, prompts))
    without = SMALL.model_copy(update={"alignment_linear": False})
    Critic.from_config(without, device="cpu").save_pretrained(tmp_path / "old")
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    del saved["alignment_linear"]  # as written before the field existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    assert Critic.from_pretrained(tmp_path / "old", device="cpu").model.alignment_residual is None


def test_quality_prior_subtracts_the_class_entropy(critic):
    """Sharpness minus how unsure the classifier is of what the image shows, in nats."""
    model = critic.model
    views = torch.stack([critic.views(photo_path(p)) for p in ("chelsea.png", "coffee.png")])
    with torch.inference_mode():
        features = model.vision_features(views)
        text = model.text_features([None, None])
        with_entropy = model.prior(features, text)[:, 0]
        with configured(model, recognisability_weight=0.0):
            sharpness = model.prior(features, text)[:, 0]
        probabilities = model.vision.concepts(features[:-1])
    entropy = -(probabilities * probabilities.log()).sum(-1).mean(1)
    assert torch.allclose(sharpness - with_entropy, entropy, atol=1e-4)
    assert (entropy > 0).all() and (entropy < torch.log(torch.tensor(1000.0))).all()


def test_the_quality_prior_does_not_take_noise_for_sharpness(critic):
    """Noise raises the variance of the Laplacian; the prior takes out what white noise at
    the estimated level adds, so a noisy copy ranks below the clean photo (with the raw
    variance, as critics saved before the field had, it ranked above)."""
    image = load_image(photo_path("chelsea.png"))
    noisy = image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    model = critic.model
    views = torch.stack([critic.views(x) for x in (image, noisy.clamp(0, 1))])
    with torch.inference_mode():
        features = model.vision_features(views)
        text = model.text_features([None, None])
        clean_prior, noisy_prior = model.prior(features, text)[:, 0]
        with configured(model, noise_free_sharpness=False):
            raw_clean, raw_noisy = model.prior(features, text)[:, 0]
    assert clean_prior > noisy_prior
    assert raw_noisy > raw_clean


def test_an_object_in_one_crop_is_full_evidence_for_the_prompt_that_names_it(critic):
    """The alignment prior is the best view's evidence for what the prompt names: a cat
    filling one quadrant of a mosaic of textures (one native crop) counts as much as the
    cat alone; averaged over views, as critics saved before the field did, it counted for
    much less."""
    size = critic.model.config.view_size
    cat = F.interpolate(load_image(photo_path("chelsea.png"))[None], size=(size, size))[0]
    texture = [load_image(photo_path(p))[:, :size, :size] for p in ("brick.png", "grass.png")]
    mosaic = torch.cat(
        [torch.cat([cat, texture[0]], dim=2), torch.cat([texture[1], texture[0]], dim=2)], dim=1
    )
    model = critic.model
    views = torch.stack([critic.views(x) for x in (cat, mosaic)])
    with torch.inference_mode():
        features = model.vision_features(views)
        text = model.text_features(["a tabby cat", "a tabby cat"])
        alone, among_textures = model.prior(features, text)[:, 1]
        with configured(model, alignment_evidence=False):
            averaged_alone, averaged_among = model.prior(features, text)[:, 1]
        no_text = model.text_features([None])
        (no_prompt,) = model.prior([level[:1] for level in features], no_text)[:, 1]
    assert among_textures >= alone - 1e-4
    assert averaged_alone - averaged_among > 0.3
    assert no_prompt == 0


@pytest.mark.parametrize("field", ["noise_free_sharpness", "alignment_evidence"])
def test_a_critic_saved_before_a_prior_changed_keeps_its_prior_and_version(critic, tmp_path, field):
    critic.save_pretrained(tmp_path / "old")
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    del saved[field]  # as written before the field existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    old = CriticConfig.load(tmp_path / "old")
    assert getattr(old, field) is False
    assert field not in old.identity_json()  # old critics keep their version


def test_noise_free_sharpness_only_lowers_sharpness_and_leaves_little_of_pure_noise():
    flat = torch.full((1, 3, 256, 256), 0.5)
    noise = flat + 0.1 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(0))
    photos = torch.stack(
        [load_image(photo_path(p))[:, :256, :256] for p in ("coffee.png", "rocket.jpg")]
    )
    statistics = view_statistics(torch.cat([photos, noise.clamp(0, 1)]))
    raw = statistics[:, FEATURES.index("log_laplacian_var")]
    cleaned = noise_free_sharpness(statistics)
    assert (cleaned <= raw).all()
    assert (raw[:2] - cleaned[:2] < 0.7).all()  # a clean photo keeps most of its sharpness
    assert raw[2] - cleaned[2] > 3  # pure noise: little more than the estimate's error


def test_score_takes_one_image_or_a_sequence_and_refuses_anything_else(critic):
    path = str(photo_path("coffee.png"))
    (one,) = critic.score(path, "a cup of coffee")
    assert critic.score([path], ["a cup of coffee"]) == [one]
    assert critic.score(Path(path))[0].quality == one.quality
    with pytest.raises(TypeError, match="sequence of images, not int"):
        critic.score(42)
    with pytest.raises(TypeError, match="one per image, not one string"):
        critic.score([path, path], "a cup of coffee")
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        critic.score([path, path], ["a cup"])
    with pytest.raises(ValueError, match="are the arguments swapped"):
        critic.score(["a cup of coffee"], [path])


def test_score_takes_numpy_images_as_it_takes_tensors(critic):
    """8-bit, 16-bit, float and grey arrays, alone or as a batch; bad ones refused."""
    tensor = load_image(photo_path("coffee.png"))
    eight = (tensor.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    (expected,) = critic.score(torch.from_numpy(eight).permute(2, 0, 1).float() / 255)
    assert critic.score(eight)[0].quality == pytest.approx(expected.quality, abs=1e-5)
    as_float = eight.astype(np.float32) / 255
    sixteen = eight.astype(np.uint16) * 257
    batch = critic.score(np.stack([as_float, as_float]))
    assert len(batch) == 2 and batch[0].quality == pytest.approx(expected.quality, abs=1e-5)
    assert critic.score(sixteen)[0].quality == pytest.approx(expected.quality, abs=1e-4)
    assert len(critic.score(eight[..., 0])) == 1  # grey
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        critic.score(as_float * 2)
    with pytest.raises(ValueError, match="not \\(3, 8, 8\\)"):
        critic.score(np.zeros((3, 8, 8), np.uint8))


def test_a_blank_prompt_is_no_prompt_and_a_lone_surrogate_is_a_clear_error(critic):
    path = str(photo_path("coffee.png"))
    scores = critic.score([path] * 3, ["  \t", "", None])
    assert [s.alignment for s in scores] == [None, None, None]
    assert max(s.quality for s in scores) - min(s.quality for s in scores) < 1e-5
    with pytest.raises(ValueError, match="prompt 1 is not valid text: surrogates"):
        critic.score([path, path], ["fine", "bad \ud800 text"])


def test_a_strip_tensor_is_refused_before_it_becomes_a_giant_view(critic):
    with pytest.raises(ImageLoadError, match="aspect ratio 1024:1"):
        critic.score(torch.rand(3, 1, 1024))


def test_the_statistics_filters_are_the_3x3_convolutions_they_stand_for():
    grey = torch.rand(3, 1, 40, 37)
    laplacian_kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    noise_kernel = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    for fast, kernel in ((laplacian, laplacian_kernel), (immerkaer, noise_kernel)):
        expected = torch.nn.functional.conv2d(grey, kernel[None, None])
        assert torch.allclose(fast(grey), expected, atol=1e-6)


def test_the_two_pass_variance_is_the_variance():
    maps = torch.rand(4, 24, 28, 28).contiguous(memory_format=torch.channels_last) * 3 - 1
    assert torch.allclose(variance(maps), maps.var(dim=(1, 2, 3)), rtol=1e-5)
    assert torch.allclose(variance(maps, (2, 3)), maps.var(dim=(2, 3)), rtol=1e-5)
    assert torch.allclose(variance(maps[:, :1, :1, :2]), maps[:, :1, :1, :2].var(dim=(1, 2, 3)))


def test_scores_do_not_depend_on_the_batch_or_the_path_through_the_critic(critic, photos):
    """On a CPU ``score`` runs each image's views through the vision side as it makes them
    (they are still in the caches); ``score_views`` takes them made elsewhere, batched."""
    prompts = ["an astronaut", None, "a cup of coffee"]
    one_by_one = critic.score(photos[:3], prompts, batch_size=1)
    together = critic.score(photos[:3], prompts, batch_size=3)
    views = torch.stack([critic.views(p) for p in photos[:3]])
    from_views = critic.score_views(views, prompts)
    for scores in (together, from_views):
        for a, b in zip(one_by_one, scores, strict=True):
            assert abs(a.quality - b.quality) < 1e-5 and a.alignment == pytest.approx(
                b.alignment, abs=1e-5
            )


def test_a_batch_scores_as_its_images_do_one_by_one(critic, photos):
    """On a CPU the backbone reads one image's views at a time; batching changes no score."""
    views = torch.stack([critic.views(p) for p in photos[:3]])
    with torch.inference_mode():
        batched = critic.model.vision_features(views)
        alone = [critic.model.vision_features(v[None]) for v in views]
        whole = [*critic.model.vision(views.flatten(0, 1)), view_statistics(views.flatten(0, 1))]
    for level, (together, reference) in enumerate(zip(batched, whole, strict=True)):
        separate = torch.cat([features[level] for features in alone])
        assert torch.allclose(together, separate, atol=1e-5)
        assert torch.allclose(together.flatten(0, 1), reference, atol=1e-5)


def test_onnx_runtime_scores_as_eager_torch_does_and_exports_once(critic, tmp_path, monkeypatch):
    monkeypatch.setenv("ELIQ_ONNX_CACHE", str(tmp_path))
    fast = Critic(critic.model, "cpu", runtime="onnxruntime")
    images = [photo_path(name) for name in ("astronaut.png", "coffee.png", "chelsea.png")]
    prompts = ["an astronaut", None, "a cat"]
    eager, exported = critic.score(images, prompts), fast.score(images, prompts, batch_size=2)
    for a, b in zip(eager, exported, strict=True):
        assert abs(a.quality - b.quality) <= 1e-3
        assert (a.alignment is None) == (b.alignment is None)
        assert a.alignment is None or abs(a.alignment - b.alignment) <= 1e-3
    (model,) = tmp_path.glob("vision-*.onnx")
    written = model.stat().st_mtime_ns
    again = Critic(critic.model, "cpu", runtime="onnxruntime")
    assert same_scores(again.score(images, prompts), exported)
    assert model.stat().st_mtime_ns == written  # kept, not exported again


def test_an_export_that_disagrees_with_eager_torch_is_refused(critic, tmp_path):
    """A stale export (another critic's vision weights under this fingerprint) is caught by
    the probe before it scores anything."""
    other = Critic.from_config(SMALL, device="cpu")
    with torch.no_grad():
        next(other.model.vision.parameters()).mul_(1.5)
    ExportedVision(other.model, "stale", "onnxruntime", tmp_path)
    with pytest.raises(RuntimeError, match="differ from eager torch"):
        ExportedVision(critic.model, "stale", "onnxruntime", tmp_path)


def test_an_exported_runtime_runs_on_the_cpu_only(critic):
    with pytest.raises(ValueError, match="runs on the CPU"):
        Critic(critic.model, "meta", runtime="onnxruntime")


def test_a_runtime_is_checked_when_the_critic_is_made(critic):
    with pytest.raises(ValueError, match="runtime must be one of"):
        Critic(critic.model, "cpu", runtime="tensorrt")


def test_a_seeded_new_critic_is_the_one_a_seeded_trainer_starts_from():
    torch.manual_seed(0)
    as_trained = Critic.from_config(SMALL, device="cpu")
    state = torch.random.get_rng_state()
    seeded = Critic.from_config(SMALL, device="cpu", seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's state is untouched
    assert seeded.fingerprint() == as_trained.fingerprint()
    assert Critic.from_config(SMALL, device="cpu", seed=1).fingerprint() != seeded.fingerprint()


def test_the_concept_labels_are_embedded_once_per_text_backbone(critic):
    """Every critic of one text backbone shares one embedding of the 1,000 class names (it
    cost 1.3-2 s of each load); other text weights get their own."""
    again = Critic.from_config(SMALL, device="cpu")
    assert again.model.concept_bank is critic.model.concept_bank
    text = again.model.text
    labels = again.model.vision.concept_labels[:3]
    first = embedded_concepts(text, labels, 16)
    assert embedded_concepts(text, labels, 16) is first
    with torch.no_grad():
        next(p for n, p in text.named_parameters() if "lora" not in n).add_(0.5)
    changed = embedded_concepts(text, labels, 16)
    assert changed is not first and not torch.allclose(changed, first)


def test_critics_of_one_text_backbone_embed_a_bare_prompt_once(critic):
    """The prompt's own sentence embedding comes from the frozen text backbone, so a second
    critic on it (a challenger beside its champion, the next cycle's critic) reuses the
    first one's instead of running the backbone again."""
    critic.model.text_features(["a lighthouse on a cliff at dusk"])
    again = Critic.from_config(SMALL, device="cpu")
    expected = critic.model.text_features(["a lighthouse on a cliff at dusk"]).sentence

    def refuse(texts, max_tokens):
        raise AssertionError(f"embedded again: {texts}")

    again.model.text.sentence = refuse
    assert torch.equal(
        again.model.text_features(["a lighthouse on a cliff at dusk"]).sentence, expected
    )


def test_the_paired_instruction_is_data_not_a_format_string():
    """A checkpoint's ``paired_instruction`` of ``"Rate {0}"`` raised; a width field took
    16 s a score. The prompt replaces ``{prompt}`` literally, and nothing else happens."""
    config = CriticConfig(paired_instruction="Rate {0} and {prompt:>20000000} for {prompt}")
    assert config.instruction(" a {cat} ") == "Rate {0} and {prompt:>20000000} for a {cat}"
    assert CriticConfig().instruction("a cat") == (
        "Rate the visual quality of this image and how well it matches: a cat"
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "critic"
    Critic.from_config(
        CriticConfig(crops=1, dim=32, decoder_layers=1), "cpu", seed=0
    ).save_pretrained(folder)
    return folder


def tampered(saved, tmp_path, file, change):
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(saved, folder)
    change(folder / file)
    return folder


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_on_load(saved, tmp_path, value):
    from safetensors.torch import load_file, save_file

    def poison(path):
        state = load_file(path)
        first = sorted(k for k, v in state.items() if v.is_floating_point())[0]
        state[first] = state[first].clone().fill_(value)
        save_file(state, path)

    folder = tampered(saved, tmp_path, "model.safetensors", poison)
    with pytest.raises(ValueError, match=r"model\.safetensors: .*not finite \(NaN or infinite\)"):
        Critic.from_pretrained(folder, "cpu")


def _edit_config(**changes):
    def edit(path):
        config = json.loads(path.read_text())
        for key, value in changes.items():
            if isinstance(value, dict):
                config[key].update(value)
            else:
                config[key] = value
        path.write_text(json.dumps(config))

    return edit


@pytest.mark.parametrize(
    ("file", "change", "said"),
    [
        ("config.json", _edit_config(crops=0), "crops"),  # was ZeroDivisionError
        ("config.json", _edit_config(dim=33), "multiple of heads"),  # was AssertionError
        ("config.json", _edit_config(view_size=-5), "view_size"),  # was a RuntimeError
        ("config.json", _edit_config(dropout=2.0), "dropout"),
        ("config.json", _edit_config(text_lora={"alpha": 0}), "text_lora.alpha"),
        ("config.json", _edit_config(recognisability_weight=float("nan")), "finite"),
        ("config.json", lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "RecursionError"),
        ("config.json", lambda p: p.write_text("[1, 2]"), "JSON object"),
        ("model.safetensors", lambda p: p.write_bytes(b"\xff" * 64), ""),
        ("scale.json", lambda p: p.write_text('{"format": "eliq-scale-1"}'), "no 'alignment'"),
        ("scale.json", lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "recursion"),
        (
            "scale.json",
            lambda p: p.write_text('{"format": "eliq-scale-1", "quality": 1, "alignment": null}'),
            "quantiles",
        ),
    ],
)
def test_a_broken_checkpoint_says_which_file_is_wrong_and_how(saved, tmp_path, file, change, said):
    folder = tampered(saved, tmp_path, file, change)
    with pytest.raises(ValueError) as refused:
        Critic.from_pretrained(folder, "cpu")
    assert str(refused.value).startswith(str(folder / file)), refused.value
    assert said in str(refused.value)


def test_one_way_to_score_a_feature_cache_and_the_prior_change_no_score(critic, tmp_path):
    """Scoring through a feature cache (memory, then disk in a fresh cache) and scoring
    with the prior beside give the very scores of plain scoring."""
    images = [photo_path("chelsea.png"), photo_path("coffee.png"), photo_path("rocket.jpg")]
    prompts = ["a cat", None, "  a rocket  "]
    plain = critic.score(images, prompts, batch_size=2)
    cached = critic.score(images, prompts, 2, critic.feature_cache(tmp_path / "features"))
    from_disk = critic.score(images, prompts, 2, critic.feature_cache(tmp_path / "features"))
    with_prior = [total for total, _ in critic.score_with_prior(images, prompts, batch_size=2)]
    cache = critic.feature_cache(tmp_path / "features")
    cached_prior = critic.score_with_prior(images, prompts, 2, cache)
    assert plain == cached == from_disk == with_prior == [total for total, _ in cached_prior]
    assert [prior for _, prior in cached_prior] == [
        prior for _, prior in critic.score_with_prior(images, prompts, batch_size=2)
    ]
    assert plain[1].alignment is None and plain[2].alignment is not None
    with pytest.raises(TypeError, match="paths"):
        critic.score([load_image(images[0])], None, 2, critic.feature_cache())
