"""The critic as users meet it: load, score, save.

``Critic.from_pretrained(path).score(images, prompts)`` returns one :class:`Score` per
image. A checkpoint is a folder with ``config.json`` (backbone names, sizes) and
``model.safetensors`` (the LoRA adapters and the trainable heads only: the backbones are
loaded by name, as peft adapters are). Nothing is ever unpickled.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from eliq.backbones import load_backbones
from eliq.config import ImageLimits
from eliq.critic import hub
from eliq.critic.config import CriticConfig
from eliq.critic.exported_vision import ExportedVision
from eliq.critic.features import FeatureCache
from eliq.critic.fingerprint import state_digest, vision_fingerprint
from eliq.critic.model import CriticModel, ScoreParts, TextFeatures
from eliq.critic.prompt_text import clean_prompts, prompt_cache_key
from eliq.critic.scale import SCALE_FILE, ScoreScale
from eliq.critic.shipped import critic_folder
from eliq.critic.text_cache import TextCache
from eliq.critic.views import grid_crops, make_views
from eliq.devices import resolve_device
from eliq.hub_ids import is_repo_id
from eliq.imageio import ImageSource, check_geometry, from_array, from_pil, load_image

log = logging.getLogger(__name__)
WEIGHTS = "model.safetensors"
Runtime = Literal["torch", "onnxruntime"]
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
ImageInput = ImageSource | torch.Tensor | np.ndarray | Image.Image
ONE_IMAGE = (str, Path, bytes, io.IOBase, Image.Image)  # what score() takes for one image


@dataclass(frozen=True)
class Score:
    """Higher is better on both axes; ``alignment`` is None for an image without a prompt.

    Raw scores are comparable between images scored by the same critic version. The
    ``*_scaled`` ones are the same scores on the critic's 0-100 scale (the percentile among
    the images it was trained on, :mod:`eliq.critic.scale`); None for a checkpoint saved
    without a scale."""

    quality: float
    alignment: float | None
    quality_scaled: float | None = None
    alignment_scaled: float | None = None


class BackboneRevisionMismatch(ValueError):
    """The backbones found now are not the ones the checkpoint was trained on."""


class Critic:
    """A :class:`CriticModel` on a device, with a cache of encoded instruction texts.

    ``runtime`` runs the vision side (backbone and statistics) in eager ``"torch"`` (the
    reference, any device), or exported to ONNX in ``"onnxruntime"`` (CPU only, faster
    there on some machines; it checks its scores against eager torch when first used, see
    :mod:`eliq.critic.exported_vision`)."""

    def __init__(
        self, model: CriticModel, device: str | torch.device = "auto", runtime: Runtime = "torch"
    ) -> None:
        self.device = resolve_device(device) if isinstance(device, str) else device
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
        if runtime != "torch" and self.device.type != "cpu":
            raise ValueError(f"runtime {runtime!r} runs on the CPU; on {self.device} use 'torch'")
        if runtime != "torch" and not model.vision.exportable:
            raise ValueError("this critic's vision backbone does not export; use 'torch'")
        self.runtime = runtime
        self.model = model.to(self.device).eval()
        self.config = model.config
        self._texts: TextCache[TextFeatures] = TextCache(size=4096)
        self._exported_vision: ExportedVision | None = None
        self.scale: ScoreScale | None = None
        self._version: str | None = None

    @classmethod
    def from_config(
        cls,
        config: CriticConfig | None = None,
        device: str = "auto",
        runtime: Runtime = "torch",
        seed: int | None = None,
        allow_backbone_change: bool = False,
    ) -> Critic:
        """A critic on pre-trained backbones with untrained adapters and heads. With
        ``seed`` the untrained parts are initialised as after ``torch.manual_seed(seed)``
        (so, as the trainer initialises them with that seed), without touching the caller's
        random state; without, from the current random state.

        The config records the backbones' revision; a config that already records one (a
        checkpoint's) is refused when the backbones found now differ, unless
        ``allow_backbone_change``: its adapters and heads were trained on those weights."""
        config = config or CriticConfig()
        pinned = config.backbone_revision
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            backbones = load_backbones(
                config.vision_backbone,
                config.text_backbone,
                config.backbone_family,
                pinned if pinned and hub.is_commit(pinned) else None,
            )
            if pinned and backbones.revision != pinned:
                message = (
                    f"the backbones {config.vision_backbone!r} + {config.text_backbone!r} are "
                    f"at revision {backbones.revision}, but the critic was trained on {pinned}"
                )
                if not allow_backbone_change:
                    raise BackboneRevisionMismatch(
                        message + "; pass allow_backbone_change=True to load it anyway"
                    )
                log.warning("%s; loading it anyway, as asked", message)
            config = config.model_copy(update={"backbone_revision": backbones.revision})
            model = CriticModel(config, backbones.vision, backbones.text)
        return cls(model, device, runtime)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str = "auto",
        runtime: Runtime = "torch",
        revision: str | None = None,
        allow_backbone_change: bool = False,
    ) -> Critic:
        """A saved critic: a checkpoint folder, the name of a shipped one
        (:mod:`eliq.critic.shipped`; ``"reference"`` comes with the package), or a hub
        repository ``"org/name"`` (:mod:`eliq.critic.hub`) at ``revision``, a commit to pin.
        Its backbones must be the revision it was trained on (see :meth:`from_config`)."""
        started = time.perf_counter()
        path = _checkpoint_folder(path, revision)
        if not (path / "config.json").is_file() or not (path / WEIGHTS).is_file():
            raise FileNotFoundError(f"{path} is not a critic checkpoint (config.json + {WEIGHTS})")
        config = CriticConfig.load(path)
        critic = cls.from_config(
            config, device, runtime, allow_backbone_change=allow_backbone_change
        )
        try:
            critic.load_trainable_state(load_file(path / WEIGHTS))
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"{path / WEIGHTS}: {error}") from None
        critic.scale = ScoreScale.load(path)
        log.info(
            "loaded critic %s from %s (%s + %s) on %s in %.1f s",
            critic.version,
            path,
            critic.config.vision_backbone,
            critic.config.text_backbone,
            critic.device,
            time.perf_counter() - started,
        )
        return critic

    @property
    def version(self) -> str:
        """A digest of the config and the trainable weights: what makes raw scores comparable
        (two critics with one version score every image alike). Score records carry it."""
        if self._version is None:
            header = self.config.identity_json()
            self._version = state_digest(header, self.model.trainable_state(), length=12)
        return self._version

    def push_to_hub(
        self,
        repo_id: str,
        token: str | None = None,
        private: bool | None = None,
        message: str | None = None,
    ) -> str:
        """Upload this critic's checkpoint to the hub repository ``repo_id`` as one commit;
        returns the commit id (``from_pretrained(repo_id, revision=...)`` pins it)."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            return hub.upload(
                Path(folder), repo_id, token, private, message or f"eliq critic {self.version}"
            )

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.config.save(path)
        state = {k: v.contiguous().cpu() for k, v in self.model.trainable_state().items()}
        save_file(state, path / WEIGHTS, metadata={"format": "eliq-critic-1"})
        (path / SCALE_FILE).unlink(missing_ok=True)  # a scale fits only the weights it was made for
        if self.scale is not None:
            self.scale.save(path)

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = self.model.trainable_state()
        missing, unexpected = sorted(expected.keys() - state), sorted(state.keys() - expected)
        misshapen = sorted(
            k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape
        )
        if missing or unexpected or misshapen:
            raise ValueError(
                f"checkpoint does not fit this critic: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}, other shapes {misshapen[:3]}"
            )
        broken = sorted(
            k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()
        )
        if broken:  # it would score every image NaN, and say it had scored them
            raise ValueError(
                f"the checkpoint holds weights that are not finite (NaN or infinite) in "
                f"{broken[:3]}: it is corrupt, or the training that made it diverged"
            )
        self.model.load_state_dict(state, strict=False)
        self.weights_changed()

    def weights_changed(self) -> None:
        """Forget what was derived from the weights the critic had: its scale, version,
        encoded texts and exported vision side. Called after loading weights, and by
        whatever trains :attr:`model` in place."""
        self.scale = None
        self._version = None
        self._texts.clear()
        self._exported_vision = None

    def fingerprint(self) -> str:
        """What this critic's scores depend on: its config and every weight (backbones,
        adapters, heads, the residuals' statistics). Critics with equal fingerprints score
        alike, so what one scored can be reused for the other."""
        return state_digest(self.config.identity_json(), self.model.state_dict())

    @torch.no_grad()
    def fit_pristine(
        self, images: Sequence[ImageSource], release: bool = False, progress: bool = False
    ) -> int:
        """Fit the pristine Gaussian (:mod:`eliq.critic.pristine`) to dense crops of
        ``images``, undistorted photographs; with ``release``, move it towards them instead
        (a new release's own positives). Returns how many crops it kept."""
        settings, pristine = self.config.pristine, self.model.pristine
        if settings is None or pristine is None:
            raise ValueError("this critic has no pristine prior (its config's pristine is None)")
        size, features, texture = self.config.view_size, [], []
        for image in tqdm(images, desc="pristine crops", unit="image", disable=not progress):
            crops = grid_crops(load_image(image).to(self.device), size)
            for start in range(0, len(crops), 32):
                levels = self.model.vision_features(crops[None, start : start + 32])
                described, textured = self.model.pristine_inputs(levels)
                features.append(described[0].cpu())
                texture.append(textured[0].cpu())
        if not features:
            raise ValueError(f"no image holds a {size} x {size} crop: nothing to fit")
        fit = pristine.blend if release else pristine.fit
        options = (settings.release_weight,) if release else ()
        kept = fit(torch.cat(features), torch.cat(texture), settings.keep_fraction, *options)
        self.weights_changed()
        return kept

    # -- scoring ------------------------------------------------------------------------------

    def views(self, image: ImageInput) -> torch.Tensor:
        """The backbone's views of one image, made on the critic's device (on a GPU the
        resizing would otherwise dominate the time to score)."""
        if isinstance(image, Image.Image):
            check_geometry("<PIL image>", image.width, image.height, ImageLimits())
            image = from_pil(image)
        elif isinstance(image, torch.Tensor):
            if image.ndim != 3 or image.shape[0] != 3:
                raise ValueError(f"an image tensor is (3, H, W), not {tuple(image.shape)}")
            check_geometry("<tensor>", image.shape[2], image.shape[1], ImageLimits())
        elif isinstance(image, np.ndarray):
            image = from_array(image)
        else:
            image = load_image(image)
        return make_views(image.to(self.device), self.config.view_size, self.config.crops)

    def vision_features(self, views: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`CriticModel.vision_features` in the critic's runtime."""
        if self.runtime == "torch":
            return self.model.vision_features(views)
        if self._exported_vision is None:
            fingerprint = vision_fingerprint(self.model)
            self._exported_vision = ExportedVision(self.model, fingerprint, self.runtime)
        return self._exported_vision(views)

    @property
    def reads_images(self) -> bool:
        """Whether text features need each image's global view (a joint backbone)."""
        return self.model.reads_images

    def feature_cache(self, cache_dir: Path | None = None) -> FeatureCache:
        """A cache of this critic's vision features (see :class:`FeatureCache`), to pass
        to :meth:`score` when the same image files are scored again and again."""
        return FeatureCache(self.model, self.device, cache_dir=cache_dir)

    def _text(self, prompts: Sequence[str | None], images: torch.Tensor | None) -> TextFeatures:
        """Text features for each prompt (None: quality only), kept by prompt: prompts
        repeat across images. A joint backbone reads each prompt with its image's global
        view (``images``, ``(B, 3, S, S)``), so nothing is kept for it."""
        if self.reads_images:
            return self.model.text_features(prompts, images)
        keys = [prompt_cache_key(p) for p in prompts]
        return stack_text(self._texts.get(keys, lambda missing: encode_each(self.model, missing)))

    @torch.inference_mode()
    def score(
        self,
        images: ImageInput | Sequence[ImageInput],
        prompts: str | Sequence[str | None] | None = None,
        batch_size: int = 8,
        features: FeatureCache | None = None,
    ) -> list[Score]:
        """Quality and alignment of each image (alignment only where a prompt is given).
        ``images`` is one image (a path, bytes, a PIL image, a ``(3, H, W)`` tensor) or a
        sequence of them; one Score per image, in order. With ``features`` (image files
        only), vision features come from that cache and are kept there."""
        single = (
            isinstance(images, ONE_IMAGE)
            or (isinstance(images, torch.Tensor) and images.ndim == 3)
            or (isinstance(images, np.ndarray) and images.ndim in (2, 3))
        )
        if single:
            images = [images]
            prompts = [prompts] if isinstance(prompts, str) or prompts is None else prompts
        elif not isinstance(images, Sequence | torch.Tensor | np.ndarray):
            raise TypeError(
                f"images must be an image or a sequence of images, not {type(images).__name__}"
            )
        prompts = clean_prompts(prompts, len(images))
        _refuse_swapped(images, prompts)
        return [
            score
            for levels, whole, batch in self._batches(images, prompts, batch_size, features)
            for score in self._scores(levels, batch, whole)
        ]

    def _batches(
        self,
        images: Sequence[ImageInput],
        prompts: list[str | None],
        batch_size: int,
        features: FeatureCache | None,
    ) -> Iterator[tuple[list[torch.Tensor], torch.Tensor | None, list[str | None]]]:
        """Per batch: the images' vision levels (from ``features``, image files only, when
        given), their global views (None from a cache, for a critic that does not read
        them) and their prompts."""
        if features is not None:
            if not all(isinstance(i, str | Path) for i in images):
                raise TypeError("a feature cache keeps image files: pass paths with features")
            images = [str(i) for i in images]
            features.precompute(images, progress=False)
        for start in range(0, len(images), batch_size):
            chunk, batch = images[start : start + batch_size], prompts[start : start + batch_size]
            if features is not None:
                yield features.features(chunk), features.global_views(chunk), batch
            else:
                views = torch.stack([self.views(i) for i in chunk])
                yield self.vision_features(views), views[:, 0], batch

    @torch.inference_mode()
    def score_views(self, views: torch.Tensor, prompts: Sequence[str | None]) -> list[Score]:
        """Scores of images given as their ``(B, V, 3, S, S)`` views (:meth:`views`, or
        made elsewhere, e.g. in a loader's workers), one prompt (or None) per image."""
        prompts = clean_prompts(prompts, len(views))
        views = views.to(self.device)
        return self._scores(self.vision_features(views), prompts, views[:, 0])

    @torch.inference_mode()
    def score_with_prior(
        self,
        images: Sequence[ImageInput],
        prompts: Sequence[str | None],
        batch_size: int = 16,
        features: FeatureCache | None = None,
    ) -> list[tuple[Score, Score]]:
        """Each image's score and, from the same pass, what the untrained prior alone says
        (raw scores): how far training moved the critic from what it knew before. With
        ``features`` (image files only), vision features come from that cache."""
        prompts = clean_prompts(prompts, len(images))
        pairs: list[tuple[Score, Score]] = []
        for levels, whole, batch in self._batches(images, prompts, batch_size, features):
            text = self._text(batch, whole if self.reads_images else None)
            prior = self.model.prior(levels, text)
            total = prior + self.model.residual(levels, text)
            for row, base, prompt in zip(total.tolist(), prior.tolist(), batch, strict=True):
                pairs.append(
                    (
                        self._score(row[0], row[1] if prompt else None),
                        Score(base[0], base[1] if prompt else None),
                    )
                )
        return pairs

    def scores_for_training(
        self, images: Sequence[str], prompts: Sequence[str | None], features: FeatureCache
    ) -> ScoreParts:
        """Raw scores of image files, with gradients, in the parts training regularises
        apart: the forward pass training ranks pairs with."""
        levels = features.features(images)
        text = self.model.text_features(prompts, features.global_views(images))
        return ScoreParts(self.model.prior(levels, text), *self.model.residual_parts(levels, text))

    def _scores(
        self, features: list[torch.Tensor], prompts: list[str | None], whole: torch.Tensor | None
    ) -> list[Score]:
        """Scores from vision features and the prompts (``whole``: the images' global
        views, for a joint backbone)."""
        text = self._text(prompts, whole if self.reads_images else None)
        out = self.model.score_features(features, text).cpu()
        return [
            self._score(quality, alignment if prompt else None)
            for (quality, alignment), prompt in zip(out.tolist(), prompts, strict=True)
        ]

    def _score(self, quality: float, alignment: float | None) -> Score:
        if self.scale is None:
            return Score(quality, alignment)
        return Score(
            quality,
            alignment,
            self.scale.to_100("quality", quality),
            None if alignment is None else self.scale.to_100("alignment", alignment),
        )


def _refuse_swapped(images: Sequence[ImageInput], prompts: list[str | None]) -> None:
    """``score(prompts, images)`` would otherwise fail on the first "file" named like a
    prompt: say what happened instead."""
    named = [i for i in images if isinstance(i, str | Path)]
    if not named or len(named) < len(images) or any(_is_file(i) for i in named):
        return
    if any(p is not None and _is_file(p) for p in prompts):
        raise ValueError(
            "score(images, prompts): no image exists but the prompts name files; "
            "are the arguments swapped?"
        )


def _is_file(name: str | Path) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # too long for a file name, or a NUL in it
        return False


def _checkpoint_folder(path: str | Path, revision: str | None = None) -> Path:
    """``path`` itself when it names a path, else the shipped critic of that name, else the
    hub repository of that id. A name that reads as a path (``./``, ``/``, ``~``, or one
    whose parent folder exists) is never sent to the hub: a typo in a folder name must not
    become a download that carries the user's token."""
    local = not isinstance(path, str) or _names_a_path(path)
    if revision is not None and (local or not is_repo_id(str(path))):
        raise ValueError(f"revision pins a critic on the hub; {str(path)!r} is not a repo id")
    if local:
        folder = Path(path).expanduser()
        if not folder.exists():
            raise FileNotFoundError(f"no checkpoint folder {str(path)!r}")
        return folder
    try:
        return critic_folder(path)
    except KeyError as unknown:
        if is_repo_id(path):
            log.info("%r is no folder here: loading the hub repository of that id", path)
            return hub.download(path, revision)
        raise FileNotFoundError(f"no checkpoint folder {path!r}, and {unknown.args[0]}") from None


def _names_a_path(name: str) -> bool:
    """Whether ``name`` can only mean a place on this machine."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or name in (".", ".."):
        return True
    path = Path(name).expanduser()
    try:
        return path.exists() or (path.parent != Path(".") and path.parent.is_dir())
    except (OSError, ValueError):  # too long for a file name, or a NUL in it
        return False


@torch.inference_mode()
def encode_each(model: CriticModel, keys: Sequence[str]) -> list[TextFeatures]:
    """Text features of each distinct prompt key (:func:`prompt_cache_key`), in order, without
    padding, to be stacked into any batch (:func:`stack_text`)."""
    encoded = model.text_features([key or None for key in keys])
    return [
        TextFeatures(
            encoded.tokens[i][~encoded.padding[i]],
            encoded.padding[i][~encoded.padding[i]],
            encoded.sentence[i],
        )
        for i in range(len(keys))
    ]


def stack_text(items: list[TextFeatures]) -> TextFeatures:
    """Stack variable-length token sequences, padding with masked zeros."""
    length = max(len(item.tokens) for item in items)
    first = items[0].tokens
    tokens = first.new_zeros(len(items), length, first.shape[-1])
    padding = torch.ones(len(items), length, dtype=torch.bool, device=first.device)
    for i, item in enumerate(items):
        tokens[i, : len(item.tokens)] = item.tokens
        padding[i, : len(item.tokens)] = False
    return TextFeatures(tokens, padding, torch.stack([item.sentence for item in items]))
