import json
import math
import shutil

import pytest
import torch

from eliq.config import PairSettings
from eliq.critic import Critic, CriticConfig, LoraSettings
from eliq.critic.model import ScoreParts
from eliq.demo import write_demo_positives
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import read_positives
from eliq.train import TrainingStopped, TrainSettings, train
from eliq.train import trainer as trainer_module
from eliq.train.data import load_pairs
from eliq.train.losses import critic_loss
from eliq.train.pair_outcomes import pair_outcomes, stored_scores
from eliq.train.settings import LossWeights

FROZEN_VISION = CriticConfig(
    crops=1, dim=32, decoder_layers=1, queries_per_axis=2, vision_lora=LoraSettings(enabled=False)
)
# A prior that is wrong about noise (the raw variance of the Laplacian, as critics saved
# before noise_free_sharpness had): what the tests of how pairs correct a prior train on.
NOISE_BLIND = FROZEN_VISION.model_copy(update={"noise_free_sharpness": False})
QUICK = TrainSettings(
    steps=6, batch_pairs=8, checkpoint_every=3, held_out_fraction=0.2, device="cpu"
)


@pytest.fixture(scope="module")
def pair_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-data")
    positives = read_positives(write_demo_positives(root / "positives"))
    settings = PairSettings(per_positive=6)
    first = PairFactory(settings).build(positives[:3], root / "pairs-a", progress=False)
    second = PairFactory(settings).build(positives[3:], root / "pairs-b", progress=False)
    return first.root, second.root


def state(critic):
    return {k: v.clone() for k, v in critic.model.trainable_state().items()}


def equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_is_deterministic_and_saves_a_critic(pair_sets, tmp_path):
    one = train([pair_sets[0]], tmp_path / "one", QUICK, config=FROZEN_VISION, progress=False)
    two = train([pair_sets[0]], tmp_path / "two", QUICK, config=FROZEN_VISION, progress=False)
    assert equal_states(state(one.critic), state(two.critic))
    assert one.steps == 6 and one.skipped_steps == 0
    assert set(one.held_out_accuracy) and all(0 <= v <= 1 for v in one.held_out_accuracy.values())
    summary = json.loads((tmp_path / "one" / "training.json").read_text())
    assert summary["steps"] == 6
    loaded = Critic.from_pretrained(tmp_path / "one", device="cpu")
    assert equal_states(state(loaded), state(one.critic))
    assert loaded.scale == one.critic.scale and "training positives" in loaded.scale.anchors
    assert loaded.version == one.critic.version == two.critic.version


def test_a_trained_critic_scores_on_a_0_to_100_scale_of_its_training_positives(pair_sets, tmp_path):
    """The scale is the percentile among the positives it trained on, so they spread
    across it; it is saved with the checkpoint."""
    from eliq.train.data import load_pairs

    result = train([pair_sets[0]], tmp_path / "c", QUICK, config=FROZEN_VISION, progress=False)
    critic = Critic.from_pretrained(tmp_path / "c", device="cpu")
    positives = load_pairs([pair_sets[0]], "x").drop_duplicates("positive")
    scores = critic.score(list(positives["positive"]), list(positives["positive_prompt"]))
    scaled = [s.quality_scaled for s in scores]
    assert all(0 <= s <= 100 for s in scaled)
    assert min(scaled) < 50 < max(scaled)
    assert all(s.alignment_scaled is not None for s in scores if s.alignment is not None)
    assert result.critic.scale == critic.scale


def counted_steps(monkeypatch, interrupt_at: int | None = None) -> list[int]:
    """Count the training steps' loss computations; the ``interrupt_at``-th one dies as a
    killed process would."""
    real, calls = trainer_module._batch_loss, []

    def counting(*args):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(trainer_module, "_batch_loss", counting)
    return calls


def assert_same_critic(one, other):
    assert equal_states(state(one.critic), state(other.critic))


def test_an_interrupted_run_resumes_to_the_same_critic(pair_sets, tmp_path, monkeypatch):
    settings = QUICK.model_copy(update={"steps": 8, "checkpoint_every": 2})
    full = train([pair_sets[0]], tmp_path / "full", settings, config=FROZEN_VISION, progress=False)
    counted_steps(monkeypatch, interrupt_at=6)
    with pytest.raises(KeyboardInterrupt):
        train([pair_sets[0]], tmp_path / "cut", settings, config=FROZEN_VISION, progress=False)
    assert json.loads((tmp_path / "cut" / "state" / "state.json").read_text())["step"] == 4
    resumed = train(
        [pair_sets[0]], tmp_path / "cut", settings, config=FROZEN_VISION, progress=False
    )
    assert resumed.steps == 8
    assert_same_critic(full, resumed)
    with pytest.raises(ValueError, match="other settings"):
        train(
            [pair_sets[0]],
            tmp_path / "cut",
            settings.model_copy(update={"seed": 9}),
            config=FROZEN_VISION,
            progress=False,
        )


def test_a_stop_request_saves_the_steps_taken_and_the_rerun_resumes(
    pair_sets, tmp_path, monkeypatch
):
    settings = QUICK.model_copy(update={"steps": 8, "checkpoint_every": 100})
    full = train([pair_sets[0]], tmp_path / "full", settings, config=FROZEN_VISION, progress=False)
    calls = counted_steps(monkeypatch)

    def stop_before_sixth_step():
        return len(calls) == 5

    with pytest.raises(TrainingStopped, match="step 5 of 8"):
        train(
            [pair_sets[0]],
            tmp_path / "cut",
            settings,
            config=FROZEN_VISION,
            progress=False,
            stop=stop_before_sixth_step,
        )
    assert json.loads((tmp_path / "cut" / "state" / "state.json").read_text())["step"] == 5
    resumed = train(
        [pair_sets[0]], tmp_path / "cut", settings, config=FROZEN_VISION, progress=False
    )
    assert resumed.steps == 8
    assert_same_critic(full, resumed)


@pytest.fixture(scope="module")
def many_prompts(tmp_path_factory):
    """A pair set of 42 AGIQA-3K images and their prompts: most training steps meet a
    prompt no earlier step did."""
    import pandas as pd

    from eliq.pairs.positives import Positive
    from tests.conftest import SHARED

    agiqa = SHARED / "datasets" / "agiqa3k"
    rows = pd.read_csv(agiqa / "scores.csv").iloc[::50]
    positives = [
        Positive(key=name, image=agiqa / "images" / name, prompt=prompt)
        for name, prompt in zip(rows["name"], rows["prompt"], strict=True)
    ]
    root = tmp_path_factory.mktemp("many-prompts")
    return PairFactory(PairSettings(per_positive=2)).build(positives, root, progress=False).root


def test_a_run_resumed_in_a_new_process_trains_the_same_bytes(many_prompts, tmp_path, monkeypatch):
    """The process-wide text cache starts empty after a restart; what it holds must not
    depend on which prompts the process met first (a resumed reference critic once moved
    scores by 0.014)."""
    from eliq.critic.text_cache import BACKBONE_TEXT

    settings = QUICK.model_copy(update={"steps": 8, "checkpoint_every": 100})
    full = train([many_prompts], tmp_path / "full", settings, config=FROZEN_VISION, progress=False)
    calls = counted_steps(monkeypatch)

    def stop_before_sixth_step():
        return len(calls) == 5

    with pytest.raises(TrainingStopped, match="step 5 of 8"):
        train(
            [many_prompts],
            tmp_path / "cut",
            settings,
            config=FROZEN_VISION,
            progress=False,
            stop=stop_before_sixth_step,
        )
    BACKBONE_TEXT.clear()  # as a new process finds it
    resumed = train(
        [many_prompts], tmp_path / "cut", settings, config=FROZEN_VISION, progress=False
    )
    assert_same_critic(full, resumed)
    assert resumed.critic.version == full.critic.version


def test_a_stop_request_during_feature_extraction_stops_before_training(pair_sets, tmp_path):
    with pytest.raises(TrainingStopped, match="extracting features"):
        train(
            [pair_sets[0]],
            tmp_path / "cut",
            QUICK,
            config=FROZEN_VISION,
            progress=False,
            stop=lambda: True,
        )
    assert not (tmp_path / "cut" / "state").exists()


def test_a_non_finite_loss_skips_its_step(pair_sets, tmp_path, monkeypatch):
    real = trainer_module.critic_loss
    calls = []

    def poisoned(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        calls.append(1)
        return (loss * math.nan if len(calls) == 2 else loss), parts

    monkeypatch.setattr(trainer_module, "critic_loss", poisoned)
    result = train([pair_sets[0]], tmp_path / "nan", QUICK, config=FROZEN_VISION, progress=False)
    assert result.skipped_steps == 1 and result.steps == 5
    assert all(torch.isfinite(v).all() for v in result.critic.model.trainable_state().values())


def test_incremental_training_starts_from_a_checkpoint_with_replay(pair_sets, tmp_path):
    first = train([pair_sets[0]], tmp_path / "v1", QUICK, config=FROZEN_VISION, progress=False)
    second = train(
        [pair_sets[1]],
        tmp_path / "v2",
        QUICK,
        init=tmp_path / "v1",
        replay=[pair_sets[0]],
        progress=False,
    )
    assert not equal_states(state(first.critic), state(second.critic))
    # what the critic derived from its starting weights (the version logged when it was
    # loaded) is of the weights it trained to, as a fresh load of them says
    saved = Critic.from_pretrained(tmp_path / "v2", device="cpu")
    assert second.critic.version == saved.version != first.critic.version
    summary = json.loads((tmp_path / "v2" / "training.json").read_text())
    assert summary["init"] == str(tmp_path / "v1") and summary["replay"] == [str(pair_sets[0])]


def test_training_ranks_its_pairs(pair_sets, tmp_path):
    """Training corrects the prior where the pairs disagree with it: loss falls and pair
    accuracy rises; the residual penalty keeps that correction smaller."""
    settings = TrainSettings(
        steps=60,
        batch_pairs=12,
        learning_rate=2e-3,
        held_out_fraction=0.0,
        residual_weight=0.0,
        device="cpu",
    )
    before = Critic.from_config(FROZEN_VISION, device="cpu")
    free = train(list(pair_sets), tmp_path / "free", settings, config=FROZEN_VISION, progress=False)
    first, last = free.history[:10], free.history[-10:]
    assert sum(h["loss"] for h in last) < sum(h["loss"] for h in first)
    assert sum(h["accuracy"] for h in last) > sum(h["accuracy"] for h in first)
    assert not equal_states(state(before), state(free.critic))
    held = train(
        list(pair_sets),
        tmp_path / "held",
        settings.model_copy(update={"residual_weight": 1.0}),
        config=FROZEN_VISION,
        progress=False,
    )
    assert sum(h["residual"] for h in held.history[-10:]) < sum(h["residual"] for h in last)


def test_vision_lora_trains_on_live_features(pair_sets, tmp_path):
    config = FROZEN_VISION.model_copy(update={"vision_lora": LoraSettings(rank=2)})
    result = train(
        [pair_sets[0]],
        tmp_path / "live",
        QUICK.model_copy(update={"steps": 2}),
        config=config,
        progress=False,
    )
    fresh = Critic.from_config(config, device="cpu")
    lora = [k for k in state(result.critic) if "vision" in k and "lora_B" in k]
    assert lora and any(not torch.equal(state(result.critic)[k], state(fresh)[k]) for k in lora)


def test_a_time_budget_cuts_training_short_and_says_so(pair_sets, tmp_path, caplog):
    settings = QUICK.model_copy(update={"time_budget_s": 0.0})
    with caplog.at_level("WARNING", logger="eliq.train.trainer"):
        result = train([pair_sets[0]], tmp_path, settings, config=FROZEN_VISION, progress=False)
    assert result.cut_short and result.steps == 1
    assert "cut training short at step 1 of 6" in caplog.text
    assert json.loads((tmp_path / "training.json").read_text())["cut_short_by_time_budget"]
    full = train([pair_sets[0]], tmp_path / "full", QUICK, config=FROZEN_VISION, progress=False)
    assert not full.cut_short and full.steps == 6


def test_vision_features_persist_on_disk_by_image_content(pair_sets, tmp_path, monkeypatch):
    import shutil

    from eliq.train.data import load_pairs

    images = list(load_pairs([pair_sets[0]], "test")["positive"].unique()[:2])
    critic = Critic.from_config(FROZEN_VISION, "cpu")
    first = critic.feature_cache(tmp_path / "cache")
    first.precompute(images, progress=False)
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 2

    copy = tmp_path / "renamed.png"  # the same bytes under another name
    shutil.copyfile(images[0], copy)
    fresh = Critic.from_config(FROZEN_VISION, "cpu")
    monkeypatch.setattr(fresh.model, "vision_features", lambda views: pytest.fail("recomputed"))
    second = fresh.feature_cache(tmp_path / "cache")
    for got, want in zip(second.features([str(copy)]), first.features([images[0]]), strict=True):
        assert torch.equal(got, want)

    other = Critic.from_config(FROZEN_VISION.model_copy(update={"crops": 2}), "cpu")
    other.feature_cache(tmp_path / "cache").precompute(images[:1], progress=False)
    assert len(list((tmp_path / "cache").iterdir())) == 2  # another vision side, another key


def test_the_pairs_overrule_the_prior_where_it_is_wrong(tmp_path):
    """Noise raises the Laplacian, so a prior of its raw variance ranks noisier copies
    higher; trained on noise pairs of five photos, the critic ranks every noisy copy of a
    sixth, unseen photo below it."""
    from eliq.pairs.pairset import PairSet

    positives = read_positives(write_demo_positives(tmp_path / "positives"))
    settings = PairSettings(per_positive=4, families=["gaussian_noise", "poisson_noise"])
    train_set = PairFactory(settings).build(positives[:5], tmp_path / "train", progress=False)
    unseen = PairFactory(settings).build(positives[5:], tmp_path / "unseen", progress=False)
    quick = TrainSettings(
        steps=60, batch_pairs=8, learning_rate=3e-3, held_out_fraction=0.0, device="cpu"
    )
    result = train([train_set.root], tmp_path / "critic", quick, config=NOISE_BLIND, progress=False)
    prior = Critic.from_config(NOISE_BLIND, device="cpu")
    rows = PairSet(unseen.root).table().to_pylist()
    assert len(rows) == 4
    prior_wrong = 0
    for row in rows:
        clean, noisy = (str(unseen.path(row[side])) for side in ("positive", "negative"))
        before = [s.quality for s in prior.score([clean, noisy])]
        after = [s.quality for s in result.critic.score([clean, noisy])]
        prior_wrong += before[1] > before[0]
        assert after[1] < after[0], (row["family"], row["severity"], after)
    assert prior_wrong >= 1


def test_alignment_pairs_train_the_bilinear_residual(tmp_path):
    """Own prompt over another photo's prompt: the untrained prior (ImageNet class names
    against the prompt) gets some of these wrong; training moves the bilinear alignment
    residual and ranks more of them right, while leaving quality alone."""
    from eliq.evaluation import pairset_accuracy

    positives = read_positives(write_demo_positives(tmp_path / "positives"))
    settings = PairSettings(per_positive=3, families=["cross_prompt"])
    pair_set = PairFactory(settings).build(positives, tmp_path / "pairs", progress=False)
    quick = TrainSettings(
        steps=40, batch_pairs=8, learning_rate=3e-3, held_out_fraction=0.0, device="cpu"
    )
    result = train(
        [pair_set.root], tmp_path / "critic", quick, config=FROZEN_VISION, progress=False
    )
    prior = Critic.from_config(FROZEN_VISION, device="cpu")
    before = pairset_accuracy(prior, [pair_set.root])["cross_prompt"]
    after = pairset_accuracy(result.critic, [pair_set.root])["cross_prompt"]
    assert before < 1.0 and after > before
    assert result.critic.model.alignment_residual.weight.abs().sum() > 0


def test_training_runs_deterministic_kernels_and_restores_the_setting(
    pair_sets, tmp_path, monkeypatch
):
    """Two runs of one recipe drifted apart after 24 steps when the machine's load
    differed (parallel CPU kernels adding repeated indices in thread order)."""
    real, seen = trainer_module._batch_loss, []

    def recording(*args):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return real(*args)

    monkeypatch.setattr(trainer_module, "_batch_loss", recording)
    assert not torch.are_deterministic_algorithms_enabled()
    train([pair_sets[0]], tmp_path, QUICK, config=FROZEN_VISION, progress=False)
    assert seen and all(seen)
    assert not torch.are_deterministic_algorithms_enabled()


def test_pair_outcomes_score_each_image_and_prompt_once_as_one_by_one(pair_sets):
    """Scoring each distinct (image, prompt) once changes nothing: each side of each pair
    scores as the critic scores that image and prompt alone."""
    critic = Critic.from_config(FROZEN_VISION, device="cpu", seed=0)
    pairs = load_pairs([pair_sets[0]], "test")
    store = critic.feature_cache()
    images = [*pairs["positive"], *pairs["negative"]]
    prompts = [*pairs["positive_prompt"], *pairs["negative_prompt"]]
    assert len(set(zip(images, prompts, strict=True))) < len(images)  # sides repeat
    together = stored_scores(critic, store, images, prompts)
    alone = [critic.score(image, prompt) for image, prompt in zip(images, prompts, strict=True)]
    expected = torch.tensor([[s.quality, s.alignment] for (s,) in alone])
    assert torch.allclose(together, expected, atol=1e-4)
    outcomes = pair_outcomes(critic, pairs, store)
    rows, axis = torch.arange(len(pairs)), torch.as_tensor(pairs["axis"].to_numpy())
    n = len(pairs)
    assert list(outcomes["right"]) == (together[:n][rows, axis] > together[n:][rows, axis]).tolist()


def test_ranks_share_each_batch_by_whole_ladders(pair_sets):
    """Data-parallel ranks split a batch into whole ladders, together exactly the batch."""
    from eliq.train.distributed import World

    batch = load_pairs([pair_sets[0]], "new")
    shares = [World(rank, 3).share(batch) for rank in range(3)]
    assert all(len(share) for share in shares)
    assert sorted(p for share in shares for p in share["pair_id"]) == sorted(batch["pair_id"])
    ladders = [set(share["group"]) for share in shares]
    assert not (ladders[0] & ladders[1] or ladders[0] & ladders[2] or ladders[1] & ladders[2])
    assert World().share(batch) is batch  # one process: the batch itself


def test_a_recorded_held_out_split_holds_whatever_later_splits_are_asked(pair_sets, tmp_path):
    """The positives held out of a pair set are chosen once and kept beside it; training
    and evaluation with other settings later still hold out exactly those."""
    from eliq.train.data import record_held_out, split_held_out

    root = shutil.copytree(pair_sets[0], tmp_path / "pairs")
    hashed = set(split_held_out(load_pairs([root], "x"), 0.5, 3)[1]["positive_id"])
    chosen = record_held_out(root, 0.5, seed=3)
    assert chosen == hashed and (root / "held_out.json").is_file()
    assert record_held_out(root, 0.1, seed=9) == chosen  # recorded once
    for fraction, seed in ((0.1, 9), (0.0, 0), (0.9, 1)):
        kept, held = split_held_out(load_pairs([root], "x"), fraction, seed)
        assert set(held["positive_id"]) == chosen
        assert not set(kept["positive_id"]) & chosen
    # beside a pair set without a record, each is split its own way
    both = load_pairs([root, pair_sets[1]], "x")
    _, held = split_held_out(both, 0.5, 3)
    unrecorded = load_pairs([pair_sets[1]], "x")
    expected = chosen | set(split_held_out(unrecorded, 0.5, 3)[1]["positive_id"])
    assert set(held["positive_id"]) == expected


def test_a_large_held_out_fraction_still_leaves_a_positive_to_train_on(pair_sets):
    from eliq.train.data import split_held_out

    pairs = load_pairs([pair_sets[0]], "x")
    kept, held = split_held_out(pairs, 0.99, 0)
    assert len(set(kept["positive_id"])) == 1
    assert len(set(held["positive_id"])) == pairs["positive_id"].nunique() - 1


def _linear_prior_correlation(critic, pair_set) -> float:
    """Correlation, over a pair set's images, of the linear quality residual with the prior."""
    frame = load_pairs([pair_set], "x")
    images = list(dict.fromkeys([*frame["positive"], *frame["negative"]]))
    with torch.no_grad():
        parts = critic.scores_for_training(images, [None] * len(images), critic.feature_cache())
    return torch.corrcoef(torch.stack([parts.linear[:, 0], parts.prior[:, 0]]))[0, 1].item()


def test_the_decorrelation_penalty_keeps_the_linear_residual_from_undoing_the_prior(tmp_path):
    """Noise negatives are sharper than their positives by the raw variance of the
    Laplacian, so these pairs teach the linear residual to work against a prior of it; the
    penalty holds it uncorrelated with the prior."""
    positives = read_positives(write_demo_positives(tmp_path / "positives"))
    noise = PairSettings(per_positive=4, families=["gaussian_noise", "poisson_noise"])
    pairs = PairFactory(noise).build(positives, tmp_path / "pairs", progress=False).root
    settings = TrainSettings(
        steps=30, batch_pairs=12, learning_rate=2e-3, held_out_fraction=0.0, device="cpu"
    )
    runs = {
        weight: train(
            [pairs],
            tmp_path / str(weight),
            settings.model_copy(update={"decorrelation_weight": weight}),
            config=NOISE_BLIND,
            progress=False,
        )
        for weight in (0.0, 4.0)
    }
    free, held = (_linear_prior_correlation(runs[w].critic, pairs) for w in (0.0, 4.0))
    assert free < -0.2 and abs(held) < 0.1
    late = {w: sum(h["decorrelation"] for h in run.history[-10:]) for w, run in runs.items()}
    assert late[4.0] < late[0.0]  # reported with or without its weight


def test_the_decorrelation_part_is_the_squared_correlation_of_the_linear_residual_with_the_prior():
    generator = torch.Generator().manual_seed(0)
    prior = torch.randn(16, 2, generator=generator)
    linear = (-0.5 * prior + 0.2 * torch.randn(16, 2, generator=generator)).requires_grad_()
    scored = ScoreParts(prior, torch.zeros(16, 2), linear)
    pairs = (scored.total[:8], scored.total[8:], torch.zeros(8, dtype=torch.long))
    off, parts_off = critic_loss(*pairs, torch.empty(0, 2, dtype=torch.long), scored)
    on, parts_on = critic_loss(
        *pairs, torch.empty(0, 2, dtype=torch.long), scored, LossWeights(decorrelation=2.0)
    )
    expected = torch.corrcoef(torch.stack([linear[:, 0], prior[:, 0]]))[0, 1].item() ** 2
    assert parts_off["decorrelation"] == pytest.approx(expected, rel=1e-5)
    assert parts_on["decorrelation"] == parts_off["decorrelation"]
    assert on.item() == pytest.approx(off.item() + 2.0 * expected, rel=1e-5)
    # a constant residual (the untrained one) correlates with nothing
    flat = ScoreParts(prior, torch.zeros(16, 2), torch.zeros(16, 2))
    _, parts = critic_loss(
        *pairs, torch.empty(0, 2, dtype=torch.long), flat, LossWeights(decorrelation=1.0)
    )
    assert parts["decorrelation"] == 0.0
