"""Each image family gets monotonically worse with severity on real photographs."""

import kornia
import pytest
import torch
import torch.nn.functional as F

from eliq.backbones.mobilenet_v2 import MobileNetV2
from eliq.pairs import available_families
from eliq.seeding import torch_generator

IMAGE_FAMILIES = [n for n, f in available_families().items() if f.edits_image]
GEOMETRIC = {"tilt", "unbalanced_crop"}  # any shift saturates SSIM, so only the deep measure


@pytest.fixture(scope="module")
def mobilenet():
    return MobileNetV2.from_pretrained()


def deep_feature_distance(model, reference, degraded):
    """Summed cosine distance of mean+std pooled MobileNetV2 stage features (ImageNet weights)."""
    with torch.no_grad():
        pairs = zip(model.stages(reference), model.stages(degraded), strict=True)
        distance = 0
        for a, b in pairs:
            pooled_a = torch.cat([a.mean((2, 3)), a.std((2, 3))], 1)
            pooled_b = torch.cat([b.mean((2, 3)), b.std((2, 3))], 1)
            distance = distance + 1 - F.cosine_similarity(pooled_a, pooled_b)
    return distance


def ladder(name, image, seed=11):
    family = available_families()[name]
    levels = torch.arange(1, family.levels + 1)
    batch = image[None].repeat(len(levels), 1, 1, 1)
    generators = [torch_generator(seed) for _ in levels]
    return batch, family.degrade(batch, levels, generators)


@pytest.mark.parametrize("name", IMAGE_FAMILIES)
def test_full_reference_quality_falls_with_every_severity_step(name, photos, mobilenet):
    for image in photos:
        reference, degraded = ladder(name, image)
        assert degraded.shape == reference.shape
        assert degraded.min() >= 0 and degraded.max() <= 1
        distance = deep_feature_distance(mobilenet, reference, degraded)
        assert distance[0] > 0
        assert (distance[1:] > distance[:-1]).all(), f"{name}: {distance.tolist()}"
        if name not in GEOMETRIC:
            ssim = kornia.metrics.ssim(reference, degraded, 11).mean(dim=(1, 2, 3))
            assert ssim[0] < 1
            assert (ssim[1:] < ssim[:-1]).all(), f"{name}: {ssim.tolist()}"


@pytest.mark.parametrize("name", IMAGE_FAMILIES)
def test_a_negative_does_not_depend_on_its_batch(name, photos):
    family = available_families()[name]
    image = photos[0]
    alone = family.degrade(image[None], torch.tensor([3]), [torch_generator(7)])
    batch = torch.stack([photos[0], photos[0].flip(-1)])
    together = family.degrade(batch, torch.tensor([3, 5]), [torch_generator(7), torch_generator(8)])
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    again = family.degrade(image[None], torch.tensor([3]), [torch_generator(7)])
    assert torch.equal(alone, again)


def test_mobilenet_weights_are_the_real_imagenet_ones(photos):
    model = MobileNetV2.from_pretrained()
    cat = F.interpolate(photos[1][None], size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top = model(cat).argmax(-1).item()
    assert 281 <= top <= 285  # the ImageNet domestic-cat classes


def test_folding_batchnorm_keeps_the_function(photos):
    model = MobileNetV2.from_pretrained()
    folded = MobileNetV2.from_pretrained().fold_batchnorm()
    batch = F.interpolate(photos[1][None], size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        for a, b in zip(model.stages(batch), folded.stages(batch), strict=True):
            assert torch.allclose(a, b, atol=1e-4)
