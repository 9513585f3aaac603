"""A third party's backbone family, installed as pip would (a dist-info declaring an
``eliq.backbones`` entry point), loads by the names it claims like a built-in."""

import sys
import textwrap

import pytest
import torch

from eliq import backbones
from eliq.critic import Critic, CriticConfig

FAMILY = """
import torch
from torch import nn

from eliq.backbones.base import Backbones, VisionEncoder, pool
from eliq.backbones.imagenet import SentenceText, minilm_path


class TinyVision(VisionEncoder):
    default_lora_targets = ["conv"]

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4)
        self.level_dims = [16, 16]

    def forward(self, views):
        maps = self.conv(views)
        return [pool(maps, (2, 3)), pool(maps.relu(), (2, 3))]

    def concepts(self, levels):
        return None


class AcmeFamily:
    def claims(self, vision, text):
        return vision.startswith("acme:")

    def load(self, vision, text, revision=None):
        return Backbones(TinyVision(), SentenceText(minilm_path()), "acme-1")
"""


@pytest.fixture
def acme(tmp_path, monkeypatch):
    (tmp_path / "acme_backbones.py").write_text(textwrap.dedent(FAMILY))
    dist = tmp_path / "acme_backbones-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-backbones\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[eliq.backbones]\nacme = acme_backbones:AcmeFamily\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(backbones, "BACKBONES", backbones.built_in_families())
    yield
    sys.modules.pop("acme_backbones", None)


def test_a_third_party_family_loads_the_names_it_claims(acme):
    assert backbones.family_for("acme:tiny", "minilm") == "acme"
    assert backbones.family_for("mobilenet_v2", "minilm") == "imagenet"
    assert backbones.family_for("openai/clip-vit-base-patch32", "clip") == "clip"
    critic = Critic.from_config(
        CriticConfig(vision_backbone="acme:tiny", crops=1, dim=32), device="cpu", seed=0
    )
    assert critic.config.backbone_revision == "acme-1"
    (score,) = critic.score(torch.rand(3, 96, 128), ["a red square"])
    assert score.alignment is not None and torch.isfinite(torch.tensor(score.quality))


def test_a_family_named_in_the_config_is_used_and_an_unknown_one_is_refused(acme):
    assert backbones.family_for("anything", "minilm", family="acme") == "acme"
    with pytest.raises(KeyError, match="unknown backbone family 'acme2'; known: acme, clip"):
        backbones.family_for("anything", "minilm", family="acme2")
