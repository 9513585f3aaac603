"""The steps of a release's cycle, in order::

    sample -> build pairs -> retune -> register -> evaluate -> check drift -> decide -> announce

one module each, every one a function ``(ReleaseContext) -> rows``: idempotent work in the
release's own folder (:class:`~daemon.state.workspace.ReleaseWorkspace`; pair building and
training resume where they stopped) and the rows that record it. They reach the registry,
Evidently, the alert channels and the executor through the context's ports, and never move
the release: :class:`~daemon.cycle.pipeline.Pipeline` commits their rows with its next state.
"""

from __future__ import annotations

from daemon.cycle.pipeline import StepFunction
from daemon.cycle.steps.announce import announce
from daemon.cycle.steps.build_pairs import build_pairs
from daemon.cycle.steps.check_drift import check_drift
from daemon.cycle.steps.decide import decide
from daemon.cycle.steps.evaluate import evaluate
from daemon.cycle.steps.register import register
from daemon.cycle.steps.retune import retune
from daemon.cycle.steps.sample import sample
from daemon.state.tables import Step

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
