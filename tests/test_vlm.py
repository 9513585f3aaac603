"""The VLM backbone family on tiny random multimodal LLMs built offline from their configs
(eliq.testing.build_tiny_vlm): real transformers classes, processors and chat templates."""

import importlib.util
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from peft.tuners.tuners_utils import BaseTunerLayer

from daemon.serve.status import collect_status
from daemon.service import Service
from daemon.state.tables import Step
from eliq.backbones import family_for
from eliq.backbones.vlm import RemoteCodeRefused
from eliq.config import PairSettings
from eliq.critic import Critic, CriticConfig, LoraSettings
from eliq.critic.critic import BackboneRevisionMismatch
from eliq.demo import write_demo_crops
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import read_positives
from eliq.testing import build_tiny_vlm
from eliq.train import TrainSettings, train
from eliq.train.recipe import Recipe
from tests.daemon_helpers import fast_settings, write_release

ARCHITECTURES = [
    "idefics3",
    "llava",
    pytest.param(
        "qwen2_vl",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("torchvision") is None,
            reason="Qwen2-VL's processor needs torchvision, which does not install beside "
            "this machine's torch",
        ),
    ),
]


def vlm_config(folder: Path, **changes) -> CriticConfig:
    small = {"crops": 1, "dim": 32, "heads": 2, "decoder_layers": 1, "queries_per_axis": 2}
    frozen_vision = {"vision_lora": LoraSettings(enabled=False)}
    fields = {**small, **frozen_vision, **changes}
    return CriticConfig(vision_backbone=str(folder), text_backbone="joint", **fields)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """Pairs of 8 of the demo photos' corner crops, and the crops with their prompts."""
    root = tmp_path_factory.mktemp("demo")
    positives = read_positives(write_demo_crops(root / "crops"))[::3]
    PairFactory(PairSettings(per_positive=2)).build(positives, root / "pairs", progress=False)
    return root / "pairs", [str(p.image) for p in positives], [p.prompt for p in positives]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_vlm_critic_trains_saves_loads_and_scores_the_same(architecture, demo, tmp_path):
    pairs, images, prompts = demo
    folder = build_tiny_vlm(tmp_path / architecture, architecture)
    config = vlm_config(folder)
    assert family_for(config.vision_backbone, config.text_backbone) == "vlm"
    untrained = Critic.from_config(config, device="cpu", seed=0)
    before = untrained.score(images, prompts)
    settings = TrainSettings(steps=3, batch_pairs=4, held_out_fraction=0.0, device="cpu")
    result = train([pairs], tmp_path / "critic", settings, config=config, progress=False)
    assert result.steps == 3
    trained = result.critic.score(images, prompts)
    assert trained != before  # the steps moved it

    loaded = Critic.from_pretrained(tmp_path / "critic", device="cpu")
    again = loaded.score(images, prompts)
    for one, other in zip(trained, again, strict=True):
        assert one.quality == pytest.approx(other.quality, abs=1e-5)
        assert one.alignment == pytest.approx(other.alignment, abs=1e-5)
    # the joint side read each image with its prompt: the same prompt on two images differs
    same_prompt = loaded.score(images[:2], [prompts[0]] * 2)
    assert same_prompt[0].alignment != same_prompt[1].alignment
    assert loaded.score(images[:1])[0].alignment is None


def test_lora_goes_on_the_language_models_attention_by_name(tmp_path):
    folder = build_tiny_vlm(tmp_path / "idefics3", "idefics3")
    critic = Critic.from_config(vlm_config(folder), device="cpu")
    adapted = {n for n, m in critic.model.text.named_modules() if isinstance(m, BaseTunerLayer)}
    assert adapted and all(".text_model.layers." in n for n in adapted), adapted
    assert {n.rsplit(".", 1)[1] for n in adapted} == {"q_proj", "v_proj"}
    assert critic.model.vision_is_frozen  # its features are cached

    with_vision = vlm_config(folder, vision_lora=LoraSettings(rank=2))
    critic = Critic.from_config(with_vision, device="cpu")
    adapted = {n for n, m in critic.model.vision.named_modules() if isinstance(m, BaseTunerLayer)}
    assert any(".vision_model.encoder.layers." in n for n in adapted)
    assert not critic.model.vision_is_frozen
    trainable = [n for n, p in critic.model.named_parameters() if p.requires_grad]
    assert not [n for n in trainable if "lora" not in n and ".vlm." in n]  # only adapters


def test_a_model_that_needs_its_own_code_is_refused_and_none_of_it_runs(tmp_path):
    folder = build_tiny_vlm(tmp_path / "custom", "llava")
    config = json.loads((folder / "config.json").read_text())
    config |= {"model_type": "sneaky_vlm", "auto_map": {"AutoConfig": "modeling_sneaky.Config"}}
    (folder / "config.json").write_text(json.dumps(config))
    ran = tmp_path / "it-ran"
    (folder / "modeling_sneaky.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    with pytest.raises(RemoteCodeRefused, match="never runs a checkpoint's code"):
        Critic.from_config(vlm_config(folder), device="cpu")
    assert not ran.exists()


def test_a_checkpoint_is_stamped_and_refuses_other_backbone_weights(tmp_path, caplog):
    folder = build_tiny_vlm(tmp_path / "vlm", "llava")
    Critic.from_config(vlm_config(folder), device="cpu", seed=0).save_pretrained(tmp_path / "c")
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert saved["_class_name"] == "CriticModel" and saved["_eliq_version"]
    assert saved["backbone_revision"].startswith("sha256:")

    saved["a_later_setting"] = 3  # saved by a newer eliq
    (tmp_path / "c" / "config.json").write_text(json.dumps(saved))
    with caplog.at_level(logging.WARNING, logger="eliq.critic.config"):
        Critic.from_pretrained(tmp_path / "c", device="cpu")
    assert "a_later_setting" in caplog.text

    shutil.rmtree(folder)
    build_tiny_vlm(folder, "llava", seed=1)  # the same name, other weights
    with pytest.raises(BackboneRevisionMismatch, match="allow_backbone_change"):
        Critic.from_pretrained(tmp_path / "c", device="cpu")
    changed = Critic.from_pretrained(tmp_path / "c", device="cpu", allow_backbone_change=True)
    assert changed.config.backbone_revision != saved["backbone_revision"]


def test_a_joint_backbone_needs_the_images(tmp_path):
    folder = build_tiny_vlm(tmp_path / "vlm", "idefics3")
    critic = Critic.from_config(vlm_config(folder), device="cpu")
    with pytest.raises(ValueError, match="reads each instruction with its image"):
        critic.model.text_features(["a cat"])
    views = torch.rand(1, 3, 64, 64)
    text = critic.model.text_features(["a cat"], views)
    assert text.tokens.shape[-1] == 32 and not text.padding.all()


def test_the_daemon_retunes_a_vlm_critic_like_any_other(tmp_path):
    """A release through the whole cycle with a tiny VLM critic: retuned, registered in
    MLflow, evaluated, checked for drift and decided, as with the default backbones."""
    folder = build_tiny_vlm(tmp_path / "vlm", "llava")
    registry = tmp_path / "registry"
    write_release(registry, "gen-v1", ["astronaut.png", "chelsea.png", "coffee.png"])
    settings = fast_settings(tmp_path, registry)
    Recipe(critic=vlm_config(folder)).save(settings.retune.recipe)

    assert Service(settings).once() == 0

    status = collect_status(settings)
    (release,) = status["releases"]
    assert release["state"] == "done"
    assert [s["step"] for s in release["steps"] if s["ok"]] == [str(s) for s in Step]
    starting, version = status["critic_versions"]  # the VLM critic it started from, retuned
    assert starting["release_id"] is None and starting["training"]["source"].startswith("a critic")
    assert version["store_version"] == "2" and version["training"]["steps"] == 4
    assert version["aliases"] and version["gate"]["why"]
    retuned = Critic.from_pretrained(version["checkpoint"], device="cpu")
    assert retuned.config.text_backbone == "joint" and retuned.reads_images


def test_gradient_checkpointing_trains_the_same_critic(demo, tmp_path):
    """Recomputing the language model's activations saves memory and changes nothing."""
    pairs = demo[0]
    folder = build_tiny_vlm(tmp_path / "vlm", "idefics3")
    settings = TrainSettings(steps=2, batch_pairs=4, held_out_fraction=0.0, device="cpu")
    losses = {}
    for checkpointing in (False, True):
        config = vlm_config(folder, gradient_checkpointing=checkpointing)
        out = tmp_path / f"critic-{checkpointing}"
        result = train([pairs], out, settings, config=config, progress=False)
        losses[checkpointing] = [row["loss"] for row in result.history]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    with pytest.raises(ValueError, match="does not support gradient_checkpointing"):
        Critic.from_config(CriticConfig(gradient_checkpointing=True), device="cpu")
