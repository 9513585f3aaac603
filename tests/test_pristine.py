"""The pristine-statistics prior: a Gaussian of pristine photographs' crops, fitted when a
critic is first trained, kept in its checkpoint, moved towards each release's positives on
a retune (real photos from scikit-image, real training on pairs built from them)."""

import json

import pytest
import torch
import torch.nn.functional as F

from eliq.config import PairSettings
from eliq.critic import Critic, CriticConfig, LoraSettings, PristineSettings
from eliq.critic.pristine import PristineStatistics
from eliq.demo import write_demo_positives
from eliq.imageio import load_image
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import read_positives
from eliq.train import TrainSettings, train
from eliq.train.trainer import new_critic
from tests.conftest import photo_path

PRISTINE = CriticConfig(
    crops=2,
    dim=32,
    decoder_layers=1,
    queries_per_axis=2,
    vision_lora=LoraSettings(enabled=False),
    pristine=PristineSettings(),
)
QUICK = TrainSettings(steps=3, batch_pairs=8, held_out_fraction=0.2, device="cpu")


@pytest.fixture(scope="module")
def photographs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pristine")
    write_demo_positives(folder)
    return folder


@pytest.fixture(scope="module")
def fitted(photographs):
    return new_critic(PRISTINE, "cpu", [photographs])


def test_the_gaussian_finds_the_mean_and_standardises_held_out_distances():
    torch.manual_seed(0)
    features = torch.randn(4000, 6) * torch.tensor([1.0, 2, 3, 4, 5, 1000]) + 7
    texture = torch.rand(4000)
    gaussian = PristineStatistics(6)
    assert not gaussian.fitted
    assert gaussian.fit(features, texture, keep_fraction=0.5) == 2000
    scale = torch.tensor([1.0, 2, 3, 4, 5, 1000])
    assert ((gaussian.mean - 7).abs() < 4 * scale / 2000**0.5).all()
    # about sqrt(6) away on average, measured out of sample
    assert 2.0 < gaussian.reference[0] < 2.8 and 0.5 < gaussian.reference[1] < 1.2
    far = gaussian.mean + 8 * gaussian.covariance.diagonal().sqrt()
    assert gaussian.distance(far) > gaussian.reference[0] + 5 * gaussian.reference[1]
    before = gaussian.mean.clone()
    gaussian.blend(features + 10, texture, keep_fraction=0.5, weight=0.25)
    assert torch.allclose(gaussian.mean, before + 2.5, atol=1e-4)
    assert int(gaussian.crops) == 4000
    with pytest.raises(ValueError, match="at least 4 crops"):
        PristineStatistics(6).fit(features[:3], texture[:3], 0.5)


def test_a_blurred_photo_lies_further_from_the_pristine_photographs(fitted):
    photo = load_image(photo_path("astronaut.png"))
    blurred = F.avg_pool2d(photo[None], 5, stride=1, padding=2, count_include_pad=False)[0]
    views = torch.stack([fitted.views(photo), fitted.views(blurred)])
    features = fitted.vision_features(views)
    term = fitted.model.pristine.term(*fitted.model.pristine_inputs(features))
    assert term[0] > term[1]
    unfitted = Critic.from_config(PRISTINE, "cpu", seed=0)
    plain = Critic.from_config(PRISTINE.model_copy(update={"pristine": None}), "cpu", seed=0)
    images = [photo_path("chelsea.png")]
    assert unfitted.score(images) == plain.score(images)  # unfitted: the prior as before
    assert fitted.score(images) != plain.score(images)


def test_the_gaussian_is_saved_with_the_critic_and_names_its_version(fitted, tmp_path):
    fitted.save_pretrained(tmp_path / "critic")
    loaded = Critic.from_pretrained(tmp_path / "critic", "cpu")
    assert loaded.version == fitted.version
    assert torch.equal(loaded.model.pristine.precision, fitted.model.pristine.precision)
    images = [photo_path("coffee.png"), photo_path("rocket.jpg")]
    assert loaded.score(images) == fitted.score(images)
    assert "pristine" not in CriticConfig().identity_json()  # older critics keep versions


def test_training_fits_a_new_critic_and_a_retune_follows_its_release(photographs, tmp_path):
    positives = read_positives(photographs / "manifest.csv")
    settings = PairSettings(per_positive=4)
    first = PairFactory(settings).build(positives[:3], tmp_path / "a", progress=False).root
    second = PairFactory(settings).build(positives[3:], tmp_path / "b", progress=False).root
    with pytest.raises(ValueError, match="--pristine"):
        train([first], tmp_path / "none", QUICK, config=PRISTINE, progress=False)
    trained = train(
        [first], tmp_path / "new", QUICK, config=PRISTINE, progress=False, pristine=[photographs]
    )
    record = json.loads((tmp_path / "new" / "training.json").read_text())
    assert record["pristine"] == [str(photographs)] and record["pristine_crops"] > 0
    held = trained.critic.model.pristine.mean.clone()
    with pytest.raises(ValueError, match="retune"):
        train([second], tmp_path / "x", QUICK, init=tmp_path / "new", pristine=[photographs])
    retuned = train([second], tmp_path / "retuned", QUICK, init=tmp_path / "new", progress=False)
    gaussian = retuned.critic.model.pristine
    assert not torch.equal(gaussian.mean, held)
    assert int(gaussian.crops) > record["pristine_crops"]
    plain = CriticConfig(crops=1, dim=32, decoder_layers=1, vision_lora=LoraSettings(enabled=False))
    with pytest.raises(ValueError, match="no pristine prior"):
        new_critic(plain, "cpu", [photographs])


def test_a_release_weight_of_zero_leaves_the_gaussian_as_trained(photographs, tmp_path):
    positives = read_positives(photographs / "manifest.csv")
    pairs = PairFactory(PairSettings(per_positive=4)).build(
        positives, tmp_path / "p", progress=False
    )
    still = PRISTINE.model_copy(update={"pristine": PristineSettings(release_weight=0.0)})
    trained = train(
        [pairs.root], tmp_path / "new", QUICK, config=still, progress=False, pristine=[photographs]
    )
    retuned = train(
        [pairs.root], tmp_path / "retuned", QUICK, init=tmp_path / "new", progress=False
    )
    before, after = trained.critic.model.pristine, retuned.critic.model.pristine
    assert torch.equal(after.mean, before.mean) and torch.equal(after.precision, before.precision)
    assert int(after.crops) == int(before.crops)
