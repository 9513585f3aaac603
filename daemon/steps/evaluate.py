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

from daemon import history
from daemon.context import ReleaseContext, StepResult
from daemon.registration import evaluation_metrics
from daemon.state import EvaluationRecord
from eliq.critic import Critic
from eliq.evaluation import held_out_accuracy

log = logging.getLogger(__name__)


def evaluate(context: ReleaseContext) -> StepResult:
    release, ports = context.release, context.ports
    store, settings = ports.store, ports.settings
    version = store.critic_for(release.id)
    training = settings.retune.train
    scopes = {
        "new": history.pair_sets(ports, [release]),
        "earlier": history.pair_sets(ports, history.earlier(ports, release)),
    }
    contenders = {
        "challenger": Critic.from_pretrained(version.checkpoint, settings.device),
        "baseline": history.starting_critic(ports, version),
    }
    rows = []
    for role, critic in contenders.items():
        fingerprint = critic.fingerprint()
        features = history.feature_store(ports, critic)
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
            store.keep_pair_outcomes(fingerprint, digests, accuracy.outcomes)
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
    for old in store.rows(EvaluationRecord, critic_version_id=version.id):
        store.delete(old)  # a re-run replaces, never doubles
    ports.critics.log_metrics(version.run_id, evaluation_metrics(rows))
    return rows
