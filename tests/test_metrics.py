"""The pyiqa-style facade over the shipped critic."""

import pytest
import torch

import eliq
from tests.conftest import photo_path


@pytest.fixture(scope="module")
def quality():
    return eliq.create_metric("eliq-quality", device="cpu")


def test_quality_scores_paths_and_batches_like_the_critic(quality):
    assert (quality.lower_better, quality.metric_mode, quality.score_range) == (
        False,
        "NR",
        "0, 100",
    )
    paths = [photo_path("chelsea.png"), photo_path("coffee.png")]
    by_path = quality(paths)
    expected = [s.quality_scaled for s in quality.critic.score(paths)]
    assert by_path.shape == (2,) and torch.allclose(by_path, torch.tensor(expected))
    batch = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    scores = quality(batch)
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 100)).all()
    assert quality(photo_path("chelsea.png")).shape == (1,)


def test_alignment_needs_captions_and_names_are_checked():
    alignment = eliq.create_metric("eliq-alignment", device="cpu", scaled=False)
    assert alignment.score_range == "-inf, inf"
    with pytest.raises(ValueError, match="needs caption_list"):
        alignment(photo_path("chelsea.png"))
    cat = alignment([photo_path("chelsea.png")], caption_list=["a cat"])
    raw = alignment.critic.score([photo_path("chelsea.png")], ["a cat"])[0].alignment
    assert cat.item() == pytest.approx(raw)
    assert eliq.list_models() == ["eliq-alignment", "eliq-quality"]
    with pytest.raises(ValueError, match="unknown metric 'niqe'"):
        eliq.create_metric("niqe")
    with pytest.raises(ValueError, match="not differentiable"):
        eliq.create_metric("eliq-quality", as_loss=True)
