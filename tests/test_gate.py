"""The promotion gate: a floor above chance, paired comparisons stored per pair, words."""

import numpy as np
import pandas as pd
import pytest

from daemon.policy.gate import GateSettings, gate_decision
from daemon.state.tables import EvaluationRecord
from eliq.config import PairSettings
from eliq.critic import Critic
from eliq.evaluation import bounded_sample, held_out_accuracy
from eliq.intervals import proportion
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import Positive
from eliq.train import TrainSettings, train
from tests.conftest import photo_path
from tests.daemon_helpers import PHOTOS
from tests.tiny_clip import build_tiny_clip, tiny_clip_critic_config

SETTINGS = GateSettings()


def _records(**outcomes):
    """Evaluation rows as the daemon stores them, from per-pair outcome lists."""
    return [
        EvaluationRecord(
            critic_version_id=1,
            role=key.split("_")[0],
            scope=key.split("_")[1],
            accuracy=float(np.mean(values)),
            pairs=len(values),
            outcomes={f"{key.split('_')[1]}-{i}": bool(v) for i, v in enumerate(values)},
        )
        for key, values in outcomes.items()
    ]


def _correlated(rng, n, baseline, challenger):
    """Outcomes of two critics on the same pairs: mostly agreeing, as two versions do."""
    base = rng.random(n) < baseline
    flip = rng.random(n)
    better = base | (flip < (challenger - baseline) / (1 - baseline))
    return base, better


def test_a_challenger_clearly_better_on_a_few_hundred_pairs_is_promoted():
    rng = np.random.default_rng(0)
    champion, challenger = _correlated(rng, 300, 0.75, 0.85)
    earlier_b, earlier_c = _correlated(rng, 400, 0.8, 0.8)
    decision = gate_decision(
        _records(
            challenger_new=challenger,
            baseline_new=champion,
            challenger_earlier=earlier_c,
            baseline_earlier=earlier_b,
        ),
        SETTINGS,
    )
    assert decision.passed, decision.why
    gain = decision.checks["gain_on_new"]
    assert gain["pairs"] == 300 and gain["low"] > 0 and gain["mcnemar_p"] < 0.01
    assert decision.why.startswith("passed: held-out accuracy on the new release 0.8")


def test_a_challenger_at_chance_is_never_promoted_whatever_the_champion():
    """300 chance-level challengers, 30 to 500 held-out pairs, against a worse champion:
    none clears the floor, though each 'gains' on the champion."""
    rng = np.random.default_rng(1)
    promoted = 0
    for _ in range(300):
        n = int(rng.integers(SETTINGS.min_pairs, 500))
        coin = rng.random(n) < 0.5
        worse = coin & (rng.random(n) < 0.8)
        promoted += gate_decision(
            _records(challenger_new=coin, baseline_new=worse), SETTINGS
        ).passed
    assert promoted == 0
    decision = gate_decision(
        _records(challenger_new=[True, False] * 30, baseline_new=[False] * 60), SETTINGS
    )
    assert not decision.passed
    assert "0.500 [0.377, 0.623] (n=60) is not above the floor 0.6" in decision.why


def test_too_few_pairs_hold_the_challenger_and_losses_must_be_certain():
    few = _records(challenger_new=[True] * 12, baseline_new=[False] * 12)
    decision = gate_decision(few, SETTINGS)
    assert not decision.passed and "too few held-out pairs" in decision.why
    rng = np.random.default_rng(2)
    new_b, new_c = _correlated(rng, 200, 0.8, 0.9)
    # earlier releases: a certain loss of 0.2 blocks, a loss of 0.1 on 20 pairs is noise
    lost = np.r_[np.ones(320, bool), np.zeros(80, bool)]
    forgets = _records(
        challenger_new=new_c,
        baseline_new=new_b,
        challenger_earlier=lost,
        baseline_earlier=np.ones(400, bool),
    )
    decision = gate_decision(forgets, SETTINGS)
    assert not decision.passed and "forgets earlier releases: -0.200" in decision.why
    noisy = _records(
        challenger_new=new_c,
        baseline_new=new_b,
        challenger_earlier=[True] * 18 + [False] * 2,
        baseline_earlier=[True] * 20,
    )
    assert gate_decision(noisy, SETTINGS).passed
    # a later release must show its gain; a first release only must not fall below its start
    flat = _records(challenger_new=new_b, baseline_new=new_c)
    assert not gate_decision(flat, SETTINGS).passed
    same = _records(challenger_new=new_c, baseline_new=new_c)
    assert gate_decision(same, SETTINGS, first=True).passed
    start_better = _records(challenger_new=new_b & (rng.random(200) < 0.8), baseline_new=new_c)
    assert not gate_decision(start_better, SETTINGS, first=True).passed


def test_the_decision_is_re_derived_from_the_stored_outcomes():
    rng = np.random.default_rng(3)
    b, c = _correlated(rng, 120, 0.7, 0.8)
    rows = _records(challenger_new=c, baseline_new=b)
    stored = [EvaluationRecord.model_validate(r.model_dump(mode="json")) for r in rows]
    assert gate_decision(stored, SETTINGS) == gate_decision(rows, SETTINGS)


@pytest.fixture(scope="module")
def prompt_swap_pairs(tmp_path_factory):
    """Prompt-swap pairs of six photos, and a tiny random CLIP critic's config."""
    folder = tmp_path_factory.mktemp("prompt-swaps")
    positives = [
        Positive(key=name, image=photo_path(name), prompt=prompt) for name, prompt in PHOTOS.items()
    ]
    pair_settings = PairSettings(families=["cross_prompt", "swap_object"], per_positive=8)
    pairs = PairFactory(pair_settings).build(positives, folder / "pairs", progress=False).root
    return pairs, tiny_clip_critic_config(build_tiny_clip(folder / "tiny-clip"))


@pytest.mark.slow
def test_a_real_critic_retuned_for_a_handful_of_steps_at_chance_is_held(
    prompt_swap_pairs, tmp_path
):
    """A randomly initialised CLIP critic judges prompt swaps no better than chance; four
    retune steps do not change that, and the floor holds it (``min_pairs`` is lowered to
    the few held-out pairs six photos give, so the floor is what decides)."""
    pairs, config = prompt_swap_pairs
    retune = TrainSettings(steps=4, batch_pairs=6, held_out_fraction=0.5, seed=0, device="cpu")
    train([pairs], tmp_path / "critic", retune, config=config, progress=False)
    challenger = Critic.from_pretrained(tmp_path / "critic", device="cpu")
    baseline = Critic.from_config(config, device="cpu")
    rows = []
    for role, critic in {"challenger": challenger, "baseline": baseline}.items():
        accuracy = held_out_accuracy(critic, {"new": pairs}, 0.5, seed=0)
        rows.append(
            EvaluationRecord(
                critic_version_id=1,
                role=role,
                scope="new",
                accuracy=accuracy.mean,
                pairs=accuracy.pairs,
                outcomes=accuracy.outcomes,
            )
        )
    n = rows[0].pairs
    hits = sum(rows[0].outcomes.values())
    accuracy = proportion(hits, n)
    assert n >= 10 and accuracy.low < 0.5, accuracy  # no better than chance (3 of 13 here)
    decision = gate_decision(rows, GateSettings(min_pairs=n), first=True)
    assert not decision.passed and "is not above the floor" in decision.why


def test_known_outcomes_are_reused_and_only_the_others_are_scored(prompt_swap_pairs):
    """What a critic ranked before is taken as given (flipped here, to tell reuse from
    rescoring); the rest is scored and agrees with a full evaluation."""
    pairs, config = prompt_swap_pairs
    critic = Critic.from_config(config, device="cpu")
    full = held_out_accuracy(critic, {"r1": pairs}, 0.5, seed=0)
    assert full.scored == full.pairs >= 10
    assert all(key.startswith("r1/") for key in full.outcomes)
    known = {key: not right for key, right in list(full.outcomes.items())[:4]}
    again = held_out_accuracy(critic, {"r1": pairs}, 0.5, seed=0, known=known)
    assert again.scored == full.pairs - 4 and again.pairs == full.pairs
    assert again.outcomes == full.outcomes | known
    none_left = held_out_accuracy(critic, {"r1": pairs}, 0.5, seed=0, known=again.outcomes)
    assert none_left.scored == 0 and none_left.outcomes == again.outcomes


def test_a_bounded_sample_of_a_grown_history_is_drawn_from_the_smaller_ones_sample():
    """The forgetting test ranks a fixed number of earlier pairs, however many releases there
    are; a grown history's sample keeps only pairs its earlier sample held, so the champion,
    which ranked that earlier sample, has nothing new to rank."""
    history = pd.DataFrame({"key": [f"r{r}/{i:05d}" for r in range(7) for i in range(40)]})
    samples = {r: bounded_sample(history.iloc[: 40 * r], 50, seed=0) for r in range(2, 8)}
    assert {len(s) for s in samples.values()} == {50}
    for releases in range(2, 7):
        grown = samples[releases + 1]
        from_before = grown[grown["key"].isin(history["key"][: 40 * releases])]
        assert set(from_before["key"]) <= set(samples[releases]["key"])
        assert len(from_before) < len(grown)  # the new release is sampled too
    assert list(samples[7].index) == sorted(samples[7].index)  # in the pairs' order
    assert bounded_sample(history.iloc[:30], 50).equals(history.iloc[:30])


def test_held_out_accuracy_ranks_at_most_its_limit(prompt_swap_pairs):
    pairs, config = prompt_swap_pairs
    critic = Critic.from_config(config, device="cpu")
    full = held_out_accuracy(critic, {"r1": pairs}, 0.5, seed=0)
    bounded = held_out_accuracy(critic, {"r1": pairs}, 0.5, seed=0, limit=5)
    assert bounded.pairs == bounded.scored == 5 < full.pairs
    assert bounded.outcomes.items() <= full.outcomes.items()
