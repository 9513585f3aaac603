"""The steps of a release's cycle, in order::

    sample -> build pairs -> retune -> register -> evaluate -> check drift -> decide -> announce

one module each, every one a function ``(ReleaseContext) -> rows``: idempotent work in the
release's own folder (:class:`~daemon.workspace.ReleaseWorkspace`; pair building and
training resume where they stopped) and the rows that record it. They reach the registry,
Evidently, the alert channels and the executor through the context's ports, and never move
the release: :class:`~daemon.pipeline.Pipeline` commits their rows with its next state.
"""

from __future__ import annotations

from daemon.pipeline import StepFunction
from daemon.state import Step
from daemon.steps.announce import announce
from daemon.steps.build_pairs import build_pairs
from daemon.steps.check_drift import check_drift
from daemon.steps.decide import decide
from daemon.steps.evaluate import evaluate
from daemon.steps.register import register
from daemon.steps.retune import retune
from daemon.steps.sample import sample

STEPS: dict[Step, StepFunction] = {
    Step.sample: sample,
    Step.build_pairs: build_pairs,
    Step.retune: retune,
    Step.register: register,
    Step.evaluate: evaluate,
    Step.check_drift: check_drift,
    Step.decide: decide,
    Step.announce: announce,
}
ON_EXECUTOR = frozenset({Step.sample, Step.build_pairs, Step.retune})
"""The steps whose work the executor runs; the others run in the daemon's process."""
