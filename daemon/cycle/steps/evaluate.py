"""Evaluate: held-out pair accuracy of the challenger and its baseline (the champion, or
for a first release the critic it started from) on the new release and on the earlier
ones: the same positives the trainer held out, so neither critic trained on them.

Each critic's outcomes are kept per pair set, so a critic ranks each pair once: the
champion scored the earlier releases' pairs when it was a challenger, and a cycle scores
only the new release's pairs and its new challenger. Of the earlier releases both rank the
same bounded sample (``gate.forgetting_pairs``), so a challenger's cost does not grow with
the history.
"""

from __future__ import annotations

import logging

from daemon.cycle import history
from daemon.cycle.context import ReleaseContext, StepResult
from daemon.policy.registration import evaluation_metrics
from daemon.state.tables import EvaluationRecord, PairOutcomeRecord
from eliq.evaluation import held_out_accuracy

log = logging.getLogger(__name__)


def evaluate(context: ReleaseContext) -> StepResult:
    release, ports, version = context.release, context.ports, context.version
    store, settings = ports.store, ports.settings
    training = settings.retune.train
    scopes = {
        "new": history.pair_sets(ports, [release]),
        "earlier": history.pair_sets(ports, history.earlier(ports, release)),
    }
    contenders = {"challenger": context.challenger, "baseline": context.baseline}
    rows: list[EvaluationRecord] = []
    kept: dict[tuple[str, str], PairOutcomeRecord] = {}  # what each critic ranked, to keep
    for role, critic in contenders.items():
        fingerprint = critic.fingerprint()
        features = history.feature_cache(ports, critic)
        for scope, pair_sets in scopes.items():
            if not pair_sets:
                continue
            digests = {name: digest for name, (_, digest) in pair_sets.items()}
            known = store.pair_outcomes(fingerprint, digests)
            roots = {name: root for name, (root, _) in pair_sets.items()}
            limit = settings.gate.forgetting_pairs if scope == "earlier" else None
            accuracy = held_out_accuracy(
                critic, roots, training.held_out_fraction, training.seed, known, features, limit
            )
            for row in store.pair_outcome_rows(fingerprint, digests, accuracy.outcomes):
                same = kept.setdefault((row.critic, row.pair_set), row)
                same.outcomes = {**same.outcomes, **row.outcomes}
            log.info(
                "%s: %s on %s pairs: %d held out, %d scored now",
                release.id,
                role,
                scope,
                accuracy.pairs,
                accuracy.scored,
            )
            rows.append(
                EvaluationRecord(
                    critic_version_id=version.id,
                    role=role,
                    scope=scope,
                    accuracy=accuracy.mean,
                    pairs=accuracy.pairs,
                    per_family=accuracy.per_family,
                    outcomes=accuracy.outcomes,
                )
            )
    ports.critics.record_metrics(version.store_version, evaluation_metrics(rows))
    replaced = store.rows(EvaluationRecord, critic_version_id=version.id)  # a re-run replaces
    return StepResult(save=[*rows, *kept.values()], delete=replaced)
