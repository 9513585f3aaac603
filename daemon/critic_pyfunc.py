"""The critic as an MLflow pyfunc model, logged as code (MLflow's "models from code"), so
nothing is pickled: ``mlflow models serve -m models:/eliq-critic@champion`` loads this file,
which reads the critic checkpoint (safetensors + JSON) from the model's artifacts.

Input: a DataFrame with ``image`` (a file path, or the image's bytes in base64) and an
optional ``prompt``. Output: ``quality`` and ``alignment`` (null without a prompt).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from eliq.critic import Critic


def _image_source(value: str) -> str | bytes:
    if os.path.exists(value):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"image {value[:60]!r} is neither a file nor base64 bytes") from error


class CriticPythonModel(PythonModel):
    def load_context(self, context) -> None:
        device = os.environ.get("ELIQ_DEVICE", "auto")
        self.critic = Critic.from_pretrained(Path(context.artifacts["checkpoint"]), device)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        images = [_image_source(str(v)) for v in model_input["image"]]
        prompts = (
            [p if isinstance(p, str) and p.strip() else None for p in model_input["prompt"]]
            if "prompt" in model_input
            else None
        )
        scores = self.critic.score(images, prompts)
        return pd.DataFrame(
            {"quality": [s.quality for s in scores], "alignment": [s.alignment for s in scores]}
        )


mlflow.models.set_model(CriticPythonModel())
