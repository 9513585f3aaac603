"""The critic as an MLflow pyfunc model, logged as code (MLflow's "models from code"), so
nothing is pickled: ``mlflow models serve -m models:/eliq-critic@champion`` loads this file,
which reads the critic checkpoint (safetensors + JSON) from the model's artifacts.

Input: a DataFrame with ``image`` (the image's bytes in base64) and an optional ``prompt``.
Output, one row per input row: ``quality``, ``alignment`` (null without a prompt), the same
on the critic's 0-100 scale (``quality_scaled``, ``alignment_scaled``) and ``error``. A row
that cannot be scored (an image that does not decode, a prompt that is not text) gets
null scores and its reason in ``error`` while the other rows are scored: one bad image does
not fail a batch. Missing values are JSON ``null``, never ``NaN``.

A served model answers whoever reaches its port, so by default it reads nothing of the
server's disk. ``ELIQ_SERVE_IMAGE_ROOTS`` (folders separated by ``os.pathsep``) opts in to
``image`` values that are absolute paths inside those folders, symbolic links resolved;
only regular files are opened (never a FIFO or a device), and a path outside them is
treated as what it then is: not base64. A refused row's ``error`` says why without a stack
trace, and depends only on the string sent, never on what the server's disk holds; images
are decoded within :class:`~eliq.config.ImageLimits`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR
from mlflow.pyfunc import PythonModel

from eliq.critic import Critic, Score
from eliq.imageio import ImageLoadError, load_image
from eliq.prompts.record import prompt_or_none

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


@dataclass(frozen=True)
class Row:
    """One input row, decoded: its image and prompt, or why it cannot be scored."""

    image: object = None
    prompt: str | None = None
    error: str | None = None


def read_row(value: object, prompt: object, roots: list[Path]) -> Row:
    """The row's image decoded and its prompt checked; a bad one becomes ``error``."""
    try:
        image = load_image(image_bytes(value, roots))
    except ImageInputError as error:
        return Row(error=f"image: {error}")
    except ImageLoadError as error:
        return Row(error=f"image: {error.reason}")
    try:  # missing (None, or NaN from the JSON records): no prompt
        return Row(image, prompt_or_none(prompt))
    except TypeError:
        return Row(error=f"prompt: a {type(prompt).__name__}, not text")
    except ValueError as error:
        return Row(error=str(error))


def output_frame(rows: list[Row], scores: dict[int, Score]) -> pd.DataFrame:
    """Object columns holding None where a value is missing or not finite: MLflow's server
    writes ``to_dict(orient="records")`` as JSON, where a float column's NaN would be
    ``NaN``, which is not JSON."""
    columns = ("quality", "alignment", "quality_scaled", "alignment_scaled")
    table: dict[str, list] = {name: [] for name in (*columns, "error")}
    for index, row in enumerate(rows):
        score = scores.get(index)
        for name in columns:
            value = None if score is None else getattr(score, name)
            table[name].append(value if value is not None and math.isfinite(value) else None)
        table["error"].append(row.error)
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in table.items()})


class CriticPythonModel(PythonModel):
    def load_context(self, context) -> None:
        device = os.environ.get("ELIQ_DEVICE", "auto")
        self.critic = Critic.from_pretrained(Path(context.artifacts["checkpoint"]), device)
        self.roots = image_roots()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        prompts = model_input["prompt"] if "prompt" in model_input else [None] * len(model_input)
        rows = [
            read_row(value, prompt, self.roots)
            for value, prompt in zip(model_input["image"], prompts, strict=True)
        ]
        good = [index for index, row in enumerate(rows) if row.error is None]
        try:
            scored = self.critic.score(
                [rows[i].image for i in good], [rows[i].prompt for i in good]
            )
        except Exception as error:  # noqa: BLE001 - the trace stays in the server's log
            log.exception("scoring failed")
            raise MlflowException(
                f"scoring failed ({type(error).__name__}); see the server's log", INTERNAL_ERROR
            ) from None
        return output_frame(rows, dict(zip(good, scored, strict=True)))


mlflow.models.set_model(CriticPythonModel())
