"""The critic as an MLflow pyfunc model, logged as code (MLflow's "models from code"), so
nothing is pickled: ``mlflow models serve -m models:/eliq-critic@champion`` loads this file,
which reads the critic checkpoint (safetensors + JSON) from the model's artifacts.

Input: a DataFrame with ``image`` (the image's bytes in base64) and an optional ``prompt``.
Output: ``quality`` and ``alignment`` (null without a prompt).

A served model answers whoever reaches its port, so by default it reads nothing of the
server's disk. ``ELIQ_SERVE_IMAGE_ROOTS`` (folders separated by ``os.pathsep``) opts in to
``image`` values that are absolute paths inside those folders, symbolic links resolved;
only regular files are opened (never a FIFO or a device), and a path outside them is
treated as what it then is: not base64. Every refusal is a 400 that names the row and why,
without a stack trace; images are decoded within :class:`~eliq.config.ImageLimits`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, INTERNAL_ERROR
from mlflow.pyfunc import PythonModel

from eliq.critic import Critic
from eliq.imageio import ImageLoadError, load_image

log = logging.getLogger(__name__)
IMAGE_ROOTS_ENV = "ELIQ_SERVE_IMAGE_ROOTS"
MAX_IMAGE_BYTES = 64 * 2**20


class ImageInputError(ValueError):
    """An ``image`` value the served model will not read."""


def image_roots(value: str | None = None) -> list[Path]:
    """The folders paths may name (``ELIQ_SERVE_IMAGE_ROOTS``), resolved; [] by default."""
    value = os.environ.get(IMAGE_ROOTS_ENV, "") if value is None else value
    return [Path(os.path.realpath(part)) for part in value.split(os.pathsep) if part.strip()]


def image_bytes(value: object, roots: list[Path]) -> bytes:
    """The image bytes an ``image`` value stands for, or :class:`ImageInputError`."""
    if not isinstance(value, str) or not value:
        raise ImageInputError("not a base64 string")
    allowed = _allowed_path(value, roots)
    if allowed is not None:
        return _read_regular_file(allowed)
    if len(value) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ImageInputError(f"over {MAX_IMAGE_BYTES // 2**20} MB")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        hint = " nor a path under the allowed folders" if roots else ""
        raise ImageInputError(f"not base64-encoded image bytes{hint}") from None


def _allowed_path(value: str, roots: list[Path]) -> Path | None:
    if not roots or "\x00" in value or not os.path.isabs(value):
        return None
    real = Path(os.path.realpath(value))
    return real if any(real.is_relative_to(root) for root in roots) else None


def _read_regular_file(path: Path) -> bytes:
    """Open without blocking (a FIFO would wait for a writer), then insist on a file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise ImageInputError("no readable file at that path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageInputError("not a regular file")
        if info.st_size > MAX_IMAGE_BYTES:
            raise ImageInputError(f"over {MAX_IMAGE_BYTES // 2**20} MB")
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read()
    finally:
        os.close(fd)


class CriticPythonModel(PythonModel):
    def load_context(self, context) -> None:
        device = os.environ.get("ELIQ_DEVICE", "auto")
        self.critic = Critic.from_pretrained(Path(context.artifacts["checkpoint"]), device)
        self.roots = image_roots()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            images = []
            for row, value in enumerate(model_input["image"]):
                try:
                    images.append(load_image(image_bytes(value, self.roots)))
                except (ImageInputError, ImageLoadError) as error:
                    reason = error.reason if isinstance(error, ImageLoadError) else error
                    raise MlflowException(f"image {row}: {reason}", BAD_REQUEST) from None
            prompts = list(model_input["prompt"]) if "prompt" in model_input else None
            if prompts is not None:
                prompts = [p if isinstance(p, str) else None for p in prompts]
            try:
                scores = self.critic.score(images, prompts)
            except (TypeError, ValueError) as error:
                raise MlflowException(str(error), BAD_REQUEST) from None
        except MlflowException:
            raise
        except Exception as error:  # noqa: BLE001 - the trace stays in the server's log
            log.exception("scoring failed")
            raise MlflowException(
                f"scoring failed ({type(error).__name__}); see the server's log", INTERNAL_ERROR
            ) from None
        return pd.DataFrame(
            {"quality": [s.quality for s in scores], "alignment": [s.alignment for s in scores]}
        )


mlflow.models.set_model(CriticPythonModel())
