"""The critic's vision side exported to ONNX and run by an optimised CPU runtime.

What an image's views become before any trainable head sees them (the vision backbone's
pooled levels and the low-level statistics) is a fixed function of the views once the
critic is loaded: LoRA adapters, if any, are traced in with their current weights. That
function is exported to ONNX once per vision fingerprint, kept in a cache folder, and run
by ONNX Runtime, compiled for one image's views (a fixed shape); ``SESSIONS`` is where
another runtime would open the same file (OpenVINO did, and was taken out: see the README).
Eager torch stays the reference: each session checks, when it is built, that the critic's
scores through it match eager torch's on a fixed probe within ``tolerance``, and refuses to
run otherwise.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eliq.critic.model import CriticModel
from eliq.critic.statistics import view_statistics

log = logging.getLogger(__name__)
TOLERANCE = 1e-3
OPSET = 18


def default_cache_dir() -> Path:
    """``$ELIQ_ONNX_CACHE``, else ``$XDG_CACHE_HOME/eliq/onnx`` (``~/.cache/eliq/onnx``)."""
    if os.environ.get("ELIQ_ONNX_CACHE"):
        return Path(os.environ["ELIQ_ONNX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eliq" / "onnx"


class _VisionSide(nn.Module):
    """``(N, 3, S, S)`` views -> the backbone's levels and the statistics, as exported."""

    def __init__(self, model: CriticModel) -> None:
        super().__init__()
        self.vision = model.vision

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (*self.vision(views), view_statistics(views))


Session = Callable[[np.ndarray], list[np.ndarray]]
"""One image's ``(V, 3, S, S)`` views -> the exported outputs, as arrays."""


def _extra(module: str, extra: str):
    """The optional module a runtime needs, or an ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{module} is an optional extra: pip install 'eliq[{extra}]'") from error


def onnxruntime_session(path: Path, views_shape: tuple[int, ...]) -> Session:
    """An ONNX Runtime CPU session on as many threads as torch uses, its number of views
    fixed so that its graph is optimised for one shape."""
    onnxruntime = _extra("onnxruntime", extra="onnx")
    options = onnxruntime.SessionOptions()
    options.add_free_dimension_override_by_name("views", views_shape[0])
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # idle threads would spin between runs, taking the cores torch's heads run on next
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda views: session.run(None, {name: views})


SESSIONS: dict[str, Callable[[Path, tuple[int, ...]], Session]] = {
    "onnxruntime": onnxruntime_session,
}
"""Runtime name -> how to open a session on the exported file for views of a shape."""


class ExportedVision:
    """``ExportedVision(model, vision_fingerprint(model), runtime)(views)`` is
    ``model.vision_features(views)`` within float error, on the CPU."""

    def __init__(
        self,
        model: CriticModel,
        fingerprint: str,
        runtime: str = "onnxruntime",
        cache_dir: Path | None = None,
        tolerance: float = TOLERANCE,
    ) -> None:
        if runtime not in SESSIONS:
            raise ValueError(f"exported runtimes are {sorted(SESSIONS)}, not {runtime!r}")
        self.model = model
        self.runtime = runtime
        path = (cache_dir or default_cache_dir()) / f"vision-{fingerprint}.onnx"
        if not path.is_file():
            self._export(path)
        config = model.config
        shape = (1 + config.crops, 3, config.view_size, config.view_size)
        self.session = SESSIONS[runtime](path, shape)
        difference = self.probe_difference()
        if not difference <= tolerance:
            raise RuntimeError(
                f"{runtime}'s scores differ from eager torch's by {difference:.2e} on the "
                f"probe (tolerance {tolerance:.0e}); score with runtime='torch'"
            )
        log.info("%s vision side %s: scores within %.1e of eager torch", runtime, path, difference)

    def _export(self, path: Path) -> None:
        """Trace the vision side with a dynamic number of views; written aside, renamed."""
        config = self.model.config
        example = torch.rand(1 + config.crops, 3, config.view_size, config.view_size)
        log.info("exporting the vision side to ONNX (once per vision fingerprint): %s", path)
        with _quiet_exporter():
            program = torch.onnx.export(
                _VisionSide(self.model).eval(),
                (example,),
                dynamo=True,
                opset_version=OPSET,
                input_names=["views"],
                dynamic_shapes=({0: torch.export.Dim("views", min=1)},),
                optimize=True,
                verbose=False,
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        program.save(str(partial))
        partial.replace(path)

    def __call__(self, views: torch.Tensor) -> list[torch.Tensor]:
        """Levels ``(B, V, d)`` of ``(B, V, 3, S, S)`` views on the CPU. One image's views
        go through per call, as for eager torch on a CPU (see
        :meth:`CriticModel.backbone_levels`): their activations stay in the caches."""
        batch, count = views.shape[:2]
        per_image = [self.session(image.contiguous().numpy()) for image in views.cpu()]
        return [
            torch.from_numpy(np.stack([outputs[i] for outputs in per_image])).reshape(
                batch, count, -1
            )
            for i in range(len(per_image[0]))
        ]

    @torch.inference_mode()
    def probe_difference(self) -> float:
        """Largest score difference between this session and eager torch on a fixed probe
        (two images of seeded random views, one with a prompt, one without)."""
        config = self.model.config
        generator = torch.Generator().manual_seed(0)
        shape = (2, 1 + config.crops, 3, config.view_size, config.view_size)
        views = torch.rand(shape, generator=generator)
        text = self.model.text_features(["a photograph of a dog on a beach", None])
        eager = self.model.score_features(self.model.vision_features(views), text)
        exported = self.model.score_features(self(views), text)
        return float((eager - exported).abs().max())


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter prints its progress and logs each optimisation pass: into the debug log."""
    passes = logging.getLogger("onnx_ir")
    level = passes.level
    passes.setLevel(logging.WARNING)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            yield
    finally:
        passes.setLevel(level)
        log.debug("exporter: %s", printed.getvalue())
