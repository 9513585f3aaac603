"""Label-free training of the critic on pair sets, fresh or incremental.

``train(pairs, out)`` tunes a critic (new, or ``init``'s) on the pairs of one or more pair
sets, mixing in ``replay`` pair sets from earlier releases so that a retune on a new
generator does not forget older ones. The loss is documented in :mod:`eliq.train.losses`.

* Deterministic for a seed: batch order, dropout and initialisation are seeded, and torch
  runs its deterministic kernels, so the result does not depend on the machine's load.
* A step whose loss is not finite is skipped and logged, never applied.
* Every ``checkpoint_every`` steps the critic and the optimiser state are written to
  ``out/state/`` (safetensors and JSON, no pickles); a rerun with the same settings resumes.
* While the vision backbone is frozen its features are computed once per image (and kept
  in ``feature_cache`` on disk, when given, for later runs on the same images).
* A run trains exactly ``steps`` steps and its learning-rate schedule ends there, so the
  result does not depend on how busy the machine is. ``time_budget_s`` (for a service
  that must move on) cuts a run short; that is logged as a warning and recorded.
* ``stop`` is polled between steps: when it returns True the state is saved and
  :class:`TrainingStopped` raised, so a service shutting down loses no finished step.
* Whole positives are held out, of the new pairs and of the replayed ones alike (an earlier
  release's held-out pairs stay unseen, so they can measure forgetting); the result reports
  held-out pair accuracy per family.
* Run in each process of a ``torch.distributed`` group (Ray Train, torchrun), it trains
  data-parallel (:mod:`eliq.train.distributed`): each rank takes its share of every batch,
  gradients are averaged, and only rank 0 writes the state and the critic.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from eliq.critic.config import CriticConfig
from eliq.critic.critic import Critic
from eliq.critic.features import FeatureCache
from eliq.pairs.positives import image_files
from eliq.train.data import ladder_batches, load_pairs, split_held_out
from eliq.train.distributed import World
from eliq.train.losses import critic_loss
from eliq.train.pair_outcomes import fit_scale, pair_accuracy
from eliq.train.settings import LossWeights, TrainSettings

log = logging.getLogger(__name__)

TRAINER_VERSION = 1
"""Bump when a change makes the same pairs and settings train another critic: the shipped
critic records it (``eliq/data/critics/reference/built_from.json``) and its test then asks
for a rebuild."""


class TrainingStopped(Exception):
    """Training was asked to stop; its resumable state is saved (if it got to a step)."""


@dataclass
class TrainResult:
    critic: Critic
    steps: int
    skipped_steps: int
    held_out_accuracy: dict[str, float]
    history: list[dict]
    cut_short: bool = False
    """The time budget stopped training before its last step."""
    processes: int = 1
    """How many data-parallel processes trained it."""


@contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic kernels for the run (restored after): CPU kernels that accumulate
    repeated indices in parallel otherwise add in whatever order threads finish, so two
    runs of one recipe drifted apart once the machine's load differed."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


@_deterministic()
def train(
    pairs: Sequence[Path],
    out: Path,
    settings: TrainSettings | None = None,
    init: Path | None = None,
    replay: Sequence[Path] = (),
    config: CriticConfig | None = None,
    progress: bool = True,
    stop: Callable[[], bool] | None = None,
    feature_cache: Path | None = None,
    pristine: Sequence[Path] = (),
) -> TrainResult:
    """Train a critic on ``pairs`` and save it to ``out`` (see the module docstring).
    ``pristine``: photographs (files or folders) a new critic's pristine prior is fitted to,
    when its config has one; a retune moves that prior towards the new pairs' positives."""
    settings = settings or TrainSettings()
    if init is not None and pristine:
        raise ValueError(
            "pristine photographs fit a new critic's prior; a retune (init) moves it towards "
            "the release's positives instead"
        )
    out = Path(out)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    critic = (
        Critic.from_pretrained(init, settings.device)
        if init is not None
        else new_critic(config, settings.device, pristine, progress)
    )
    model = critic.model
    new_pairs, held_out = split_held_out(
        _without(load_pairs(pairs, "new"), settings.exclude_families),
        settings.held_out_fraction,
        settings.seed,
    )
    replay_pairs = None
    if replay:  # earlier releases' held-out positives stay held out: they test forgetting
        replay_pairs, _ = split_held_out(
            _without(load_pairs(replay, "replay"), settings.exclude_families),
            settings.held_out_fraction,
            settings.seed,
        )
    if new_pairs.empty:
        raise ValueError(f"no training pairs in {[str(p) for p in pairs]}")
    if init is not None:
        _follow_release(critic, new_pairs, progress)
    world = World.current()
    store = critic.feature_cache(feature_cache)
    frames = [new_pairs, held_out] + ([replay_pairs] if replay_pairs is not None else [])
    every_image = pd.concat([f[["positive", "negative"]] for f in frames]).to_numpy().ravel()
    every_image = list(dict.fromkeys(every_image))
    # ranks decide a stop together, at the first step: one stopping here alone would leave
    # the others waiting at the barrier
    precompute_stop = stop if world.size == 1 else None
    try:
        if feature_cache is not None and world.size > 1:  # each rank its share, then all
            store.precompute(world.share_of(every_image), progress)
            world.barrier()
        store.precompute(every_image, progress, precompute_stop)
    except InterruptedError as stopped:
        raise TrainingStopped("stopped while extracting features") from stopped

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: (
            min(1.0, (step + 1) / 50)
            * 0.5
            * (1 + math.cos(math.pi * min(step, settings.steps) / settings.steps))
        ),
    )
    state_dir = out / "state"
    start_step, history, skipped = _resume(state_dir, settings, critic, optimiser, schedule)
    batches = ladder_batches(
        new_pairs, settings.batch_pairs, rng, replay_pairs, settings.replay_fraction
    )
    for _ in range(start_step):  # replay the batch order of the steps already taken
        next(batches)
    model.train()
    started = time.monotonic()
    cut_short = False
    bar = tqdm(range(start_step, settings.steps), desc="train", unit="step", disable=not progress)
    step = start_step
    for step in bar:
        if world.any(stop is not None and stop()):
            if step > start_step and world.leader:
                _save_state(
                    state_dir, settings, critic, optimiser, schedule, step, history, skipped
                )
            raise TrainingStopped(f"stopped at step {step} of {settings.steps}")
        batch = world.share(next(batches))
        optimiser.zero_grad(set_to_none=True)
        loss, parts = float("nan"), {}
        if len(batch):
            computed, parts = _batch_loss(critic, store, batch, settings.loss_weights)
            loss = computed.item()
            if math.isfinite(loss):
                computed.backward()
        finite, loss, parts = world.combine(parameters, len(batch), loss, parts)
        if not finite:
            skipped += 1
            log.warning("step %d: non-finite loss %s, skipped", step, loss)
            continue
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        schedule.step()
        history.append({"step": step, "loss": loss, **parts})
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{parts['accuracy']:.2f}")
        done = step + 1
        out_of_time = world.any(
            settings.time_budget_s is not None
            and time.monotonic() - started > settings.time_budget_s
        )
        due = done % settings.checkpoint_every == 0 or done == settings.steps or out_of_time
        if due and world.leader:
            _save_state(state_dir, settings, critic, optimiser, schedule, done, history, skipped)
        if out_of_time and done < settings.steps:
            cut_short = True
            log.warning(
                "time budget of %.0f s cut training short at step %d of %d",
                settings.time_budget_s,
                done,
                settings.steps,
            )
            break
    model.eval()
    critic.weights_changed()
    accuracy = pair_accuracy(critic, held_out, store)
    trained_on = pd.concat([new_pairs] + ([replay_pairs] if replay_pairs is not None else []))
    critic.scale = fit_scale(critic, trained_on, store)
    summary = {
        "steps": len(history) + skipped,
        "skipped_steps": skipped,
        "cut_short_by_time_budget": cut_short,
        "train_seconds": round(time.monotonic() - started, 1),
        "held_out_accuracy": accuracy,
        "settings": settings.model_dump(),
        "pairs": [str(p) for p in pairs],
        "replay": [str(p) for p in replay],
        "init": str(init) if init else None,
        "pristine": [str(p) for p in pristine],
        "pristine_crops": int(model.pristine.crops) if model.pristine is not None else None,
        "final_loss": history[-1]["loss"] if history else None,
        "processes": world.size,
    }
    if world.leader:
        critic.save_pretrained(out)
        (out / "training.json").write_text(json.dumps(summary, indent=2))
    world.barrier()  # the critic is on disk before any rank reports the run done
    return TrainResult(critic, len(history), skipped, accuracy, history, cut_short, world.size)


def new_critic(
    config: CriticConfig | None,
    device: str,
    pristine: Sequence[Path] = (),
    progress: bool = False,
) -> Critic:
    """An untrained critic from ``config``, its pristine prior (if the config has one)
    fitted to the ``pristine`` photographs (files or folders): the critic training starts
    from, and the prior it is measured against."""
    critic = Critic.from_config(config, device)
    if critic.config.pristine is None:
        if pristine:
            raise ValueError(
                "pristine photographs were given, but the critic has no pristine prior"
            )
        return critic
    if not pristine:
        raise ValueError(
            "the critic has a pristine prior: pass the pristine photographs to fit it to "
            "(--pristine)"
        )
    images = [
        i for path in pristine for i in (image_files(path) if Path(path).is_dir() else [path])
    ]
    kept = critic.fit_pristine(images, progress=progress)
    log.info("pristine prior fitted to %d crops of %d photographs", kept, len(images))
    return critic


def _follow_release(critic: Critic, new_pairs: pd.DataFrame, progress: bool) -> None:
    """A retune moves the pristine prior towards the release's own positives (those it
    trains on), shrunk towards what it held (see PristineSettings.release_weight); at weight
    0 it stays as it was, and the positives are not read for it."""
    if critic.config.pristine is None or critic.config.pristine.release_weight == 0:
        return
    positives = sorted(set(new_pairs["positive"]))
    kept = critic.fit_pristine(positives, release=True, progress=progress)
    log.info("pristine prior moved towards %d crops of %d positives", kept, len(positives))


def _without(pairs: pd.DataFrame, families: Sequence[str]) -> pd.DataFrame:
    return pairs[~pairs["family"].isin(families)] if families else pairs


def _batch_loss(
    critic: Critic, store: FeatureCache, batch: pd.DataFrame, weights: LossWeights
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scores of each unique (image, prompt) of the batch, then the pair loss."""
    sides = {
        side: list(zip(batch[side], batch[f"{side}_prompt"], strict=True))
        for side in ("positive", "negative")
    }
    unique = list(dict.fromkeys(sides["positive"] + sides["negative"]))
    index = {item: i for i, item in enumerate(unique)}
    images = [image for image, _ in unique]
    prompts = [prompt for _, prompt in unique]
    scored = critic.scores_for_training(images, prompts, store)
    scores = scored.total
    rows = {
        side: torch.tensor([index[item] for item in items], device=scores.device)
        for side, items in sides.items()
    }  # index_select: its gradient adds repeated rows in a fixed order
    positive = scores.index_select(0, rows["positive"])
    negative = scores.index_select(0, rows["negative"])
    axis = torch.tensor(batch["axis"].to_numpy(), device=scores.device)
    ladder = _ladder(batch).to(scores.device)
    return critic_loss(
        positive, negative, axis, ladder, scored, weights, critic.model.ridge_weights()
    )


def _ladder(batch: pd.DataFrame) -> torch.Tensor:
    """Index pairs (i, j) of one ladder with severity(i) < severity(j)."""
    pairs = []
    for rows in batch.groupby("group").indices.values():
        for i in rows:
            for j in rows:
                if batch["severity"].iat[i] < batch["severity"].iat[j]:
                    pairs.append((i, j))
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)


# -- resumable state (safetensors + JSON) ---------------------------------------------------


def _save_state(folder, settings, critic, optimiser, schedule, step, history, skipped) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"model.{k}": v.contiguous().cpu() for k, v in critic.model.trainable_state().items()
    }
    optimiser_state = optimiser.state_dict()
    for index, state in optimiser_state["state"].items():
        for name, value in state.items():
            tensors[f"optimiser.{index}.{name}"] = torch.as_tensor(value).contiguous().cpu()
    save_file(tensors, folder / "state.safetensors.tmp")
    (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
    meta = {
        "settings": settings.model_dump(),
        "step": step,
        "skipped": skipped,
        "history": history,
        "param_groups": optimiser_state["param_groups"],
        "schedule": schedule.state_dict(),
        "torch_rng": torch.get_rng_state().tolist(),
    }
    (folder / "state.json.tmp").write_text(json.dumps(meta))
    (folder / "state.json.tmp").replace(folder / "state.json")


def _resume(folder, settings, critic, optimiser, schedule) -> tuple[int, list[dict], int]:
    if not (folder / "state.json").is_file():
        return 0, [], 0
    meta = json.loads((folder / "state.json").read_text())
    if meta["settings"] != settings.model_dump():
        raise ValueError(f"{folder} holds a training run with other settings; use a new --out")
    tensors = load_file(folder / "state.safetensors")
    critic.load_trainable_state(
        {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    )
    state: dict[int, dict] = defaultdict(dict)
    for key, value in tensors.items():
        if key.startswith("optimiser."):
            _, index, name = key.split(".", 2)
            state[int(index)][name] = value
    optimiser.load_state_dict({"state": dict(state), "param_groups": meta["param_groups"]})
    schedule.load_state_dict(meta["schedule"])
    torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
    log.info("resuming training at step %d", meta["step"])
    return meta["step"], meta["history"], meta["skipped"]
