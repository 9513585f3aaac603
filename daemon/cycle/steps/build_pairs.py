"""Build pairs: the pair set of the release's samples, its chunks made on the executor a
wave at a time (:mod:`daemon.tasks.pair_building`); the parts are written after each wave, so a
stop or a crash resumes from there. The held-out positives are chosen here, once."""

from __future__ import annotations

import hashlib

from daemon.cycle.context import ReleaseContext, StepResult
from daemon.state.tables import PairSetRecord
from daemon.tasks.pair_building import PairShard, build_pair_shard, pair_factory
from eliq.pairs.pairset import PairSet
from eliq.pairs.positives import read_positives
from eliq.train.data import record_held_out


def build_pairs(context: ReleaseContext) -> StepResult:
    workspace, settings, ports = context.workspace, context.settings, context.ports
    positives = read_positives(workspace.samples / "manifest.csv", workspace.samples)
    pairs, images = settings.pairs, settings.images
    threads = settings.executor.cpu_threads
    with context.executor() as executor:
        factory = pair_factory(pairs, images)
        writer = factory.writer(workspace.pairs)
        shards = [
            PairShard(pairs, images, str(workspace.pairs), chunk, threads)
            for chunk in factory.chunks(positives, writer)
        ]
        wave = 2 * executor.workers
        for start in range(0, len(shards), wave):
            results = executor.map(
                build_pair_shard, shards[start : start + wave], ports.stop.is_set
            )
            for result in results:
                writer.write_part(result.records, result.errors)
    pair_set = writer.finish()
    if len(pair_set) == 0:
        raise RuntimeError(f"no pairs could be built from {workspace.samples}")
    train = settings.retune.train  # the split every later retune and test uses
    record_held_out(pair_set.root, train.held_out_fraction, train.seed)
    record = PairSetRecord(
        release_id=context.release.id,
        path=str(pair_set.root),
        digest=pair_set_digest(pair_set),
        pairs=len(pair_set),
    )
    return StepResult(save=[record])


def pair_set_digest(pair_set: PairSet) -> str:
    """The pair set's content: its manifest and every image, by path and bytes."""
    digest = hashlib.sha256()
    files = [
        *(pair_set.root / "manifest").glob("part-*.parquet"),
        *pair_set.root.glob("images/**/*"),
    ]
    for path in sorted(f for f in files if f.is_file()):
        digest.update(str(path.relative_to(pair_set.root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
