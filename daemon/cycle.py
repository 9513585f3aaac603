"""The cycle: what happens to each release the registries find.

``discover`` polls one registry and stores its new releases with the cursor after them.
The steps of a release, in order::

    sample -> build pairs -> retune -> register -> evaluate -> check drift -> decide -> alert

are this class's methods, each ``(release) -> rows``: idempotent work in the release's own
folder (:class:`~daemon.workspace.ReleaseWorkspace`; pair building and training resume where
they stopped) and the rows that record it. :class:`~daemon.pipeline.Pipeline` runs them in
order and commits each with the release's next state, retries and parks. The cycle reaches
MLflow, Evidently, alert channels and the executor through the ports it is given.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from adapters import GENERATORS, create_generator, create_registry
from adapters.alerts.base import Alert
from adapters.critic_stores import CHALLENGER, CHAMPION, CriticStore, RegisteredCritic
from adapters.executors import Executor
from adapters.registries.base import Release
from daemon.alerting import Alerter
from daemon.drift import (
    AxisCheck,
    DriftResult,
    DriftSink,
    agreement_checks,
    incident_topic,
    save_check,
    shift_checks,
)
from daemon.gate import gate_decision
from daemon.pair_building import PairShard, build_pair_shard, pair_factory, release_factories
from daemon.pipeline import Pipeline, StepFunction, Stopping
from daemon.retuning import RetuneJob, run_retune
from daemon.sampling import release_generators, render_shard, shard_suite
from daemon.settings import DaemonSettings, RegistrySpec
from daemon.state import (
    CriticVersion,
    DriftCheck,
    EvaluationRecord,
    PairSetRecord,
    ReleaseRecord,
    ReleaseState,
    SampleSet,
    Step,
    Store,
    utcnow,
)
from daemon.workspace import ReleaseWorkspace
from eliq.critic import Critic, CriticConfig
from eliq.evaluation import held_out_accuracy, score_table
from eliq.imageio import from_pil, save_image
from eliq.pairs.pairset import PairSet
from eliq.pairs.positives import positives_in_folder, read_positives
from eliq.prompts import load_suite
from eliq.train.data import FeatureStore, record_held_out

log = logging.getLogger(__name__)
# the steps whose work the executor runs; the others run in the daemon's process
ON_EXECUTOR = frozenset({Step.sample, Step.build_pairs, Step.retune})


class Cycle:
    """The steps over the ports it is given (:mod:`daemon.composition` builds them)."""

    def __init__(
        self,
        settings: DaemonSettings,
        store: Store,
        critics: CriticStore,
        drift: DriftSink,
        alerter: Alerter,
        executor: Executor,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.critics = critics
        self.drift = drift
        self.alerter = alerter
        self.executor = executor
        self.stop = stop or threading.Event()
        self.registries = {spec.name: spec for spec in settings.registry_specs()}
        self.steps: dict[Step, StepFunction] = {
            Step.sample: self.sample,
            Step.build_pairs: self.build_pairs,
            Step.retune: self.retune,
            Step.register: self.register,
            Step.evaluate: self.evaluate,
            Step.check_drift: self.check_drift,
            Step.decide: self.decide,
            Step.announce: self.announce,
        }
        self.pipeline = Pipeline(
            store,
            self.steps,
            alerter,
            executor,
            ON_EXECUTOR,
            settings.max_attempts,
            settings.retry_backoff_s,
            self.stop,
        )

    def publish(self, kind: str, release: ReleaseRecord, result: DriftResult) -> None:
        """Publish a drift check's report for the dashboards (a re-run replaces it)."""
        if result.report is None:
            return
        generators = {r.name for r in self.store.releases()}
        version = result.summary.get("critic_version")
        name = f"{kind}:{release.id}" + (f":v{version}" if version else "")
        self.drift.publish(name, result.report, generators)

    # -- discovery ------------------------------------------------------------------------

    def discover(self, registry: str) -> int:
        """Poll one registry; store what it found and its new cursor together."""
        spec = self.registries[registry]
        adapter = create_registry(spec.kind, **spec.settings)
        found, cursor = adapter.poll(self.store.cursor(registry))
        rows = [_release_row(spec, release) for release in found]
        added = self.store.record_poll(registry, rows, cursor)
        if added:
            log.info("%s: %d new release(s): %s", registry, added, [r.id for r in rows])
        return added

    # -- the steps ------------------------------------------------------------------------

    def workspace(self, release: ReleaseRecord) -> ReleaseWorkspace:
        return ReleaseWorkspace.of(self.settings.data_dir, release.id)

    def sample(self, release: ReleaseRecord) -> list[Any]:
        """Render the release on the prompt suite with fixed seeds (or read its stored
        outputs) into ``samples/`` with a ``manifest.csv``; written aside, then renamed."""
        spec = self.registries.get(release.registry_name)
        loader = release.loader
        options = {**loader.get("options", {}), **(spec.generator if spec else {})}
        if loader.get("revision") is not None:
            options.setdefault("revision", loader["revision"])
        if options.get("single_file"):  # a checkpoint downloaded once, kept with the release
            options.setdefault("download_dir", str(self.workspace(release).weights))
        if getattr(GENERATORS.get(loader["kind"]), "renders", True):
            outputs = self._render(loader["kind"], str(loader["ref"]), options)
        else:  # stored outputs: read here, named by their place in the release
            generator = create_generator(loader["kind"], ref=loader["ref"], **options)
            outputs = (
                (f"{index:05d}.png", prompt, seed, image)
                for index, (prompt, seed, image) in enumerate(generator.sample())
            )
        target = self.workspace(release).samples
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".samples-", dir=target.parent))
        rows = []
        for name, prompt, seed, image in outputs:
            if self.stop.is_set():
                shutil.rmtree(scratch)
                raise Stopping
            save_image(from_pil(image), scratch / name)
            rows.append(
                {"image": name, "prompt": prompt or "", "seed": "" if seed is None else seed}
            )
        if not rows:
            shutil.rmtree(scratch)
            raise RuntimeError(f"release {release.id} yielded no images")
        with (scratch / "manifest.csv").open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, ["image", "prompt", "seed"])
            writer.writeheader()
            writer.writerows(rows)
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
        return [SampleSet(release_id=release.id, folder=str(target), images=len(rows))]

    def _render(
        self, kind: str, ref: str, options: dict[str, Any]
    ) -> list[tuple[str, str, int, Image.Image]]:
        """The prompt suite rendered in shards on the executor, in the suite's order."""
        sampling = self.settings.sampling
        suite = load_suite(sampling.suite) if sampling.suite else load_suite()
        prompts = [record.text for record in suite[: sampling.prompts]]
        shards = shard_suite(
            kind,
            ref,
            options,
            prompts,
            sampling.seed,
            sampling.shard_prompts,
            self.settings.executor.cpu_threads,
        )
        try:
            rendered = self.executor.map(render_shard, shards, self.stop.is_set)
        except InterruptedError as stopped:
            raise Stopping from stopped
        finally:
            release_generators()
        images = sorted((image for shard in rendered for image in shard), key=lambda i: i.index)
        return [(i.name, i.prompt, i.seed, Image.fromarray(i.pixels)) for i in images]

    def build_pairs(self, release: ReleaseRecord) -> list[Any]:
        """The pair set of the release's samples, its chunks made on the executor a wave at a
        time (parts written after each wave, so a stop or a crash resumes from there)."""
        workspace = self.workspace(release)
        positives = read_positives(workspace.samples / "manifest.csv", workspace.samples)
        pairs, images = self.settings.pairs, self.settings.images
        threads = self.settings.executor.cpu_threads
        try:
            factory = pair_factory(pairs, images)
            writer = factory.writer(workspace.pairs)
            shards = [
                PairShard(pairs, images, str(workspace.pairs), chunk, threads)
                for chunk in factory.chunks(positives, writer)
            ]
            wave = 2 * self.executor.workers
            for start in range(0, len(shards), wave):
                results = self.executor.map(
                    build_pair_shard, shards[start : start + wave], self.stop.is_set
                )
                for result in results:
                    writer.write_part(result.records, result.errors)
        except InterruptedError as stopped:
            raise Stopping from stopped
        finally:
            release_factories()
        pair_set = writer.finish()
        if len(pair_set) == 0:
            raise RuntimeError(f"no pairs could be built from {workspace.samples}")
        train = self.settings.retune.train  # the split every later retune and test uses
        record_held_out(pair_set.root, train.held_out_fraction, train.seed)
        record = PairSetRecord(
            release_id=release.id,
            path=str(pair_set.root),
            digest=_pair_set_digest(pair_set),
            pairs=len(pair_set),
        )
        return [record]

    def retune(self, release: ReleaseRecord) -> list[Any]:
        """Incremental LoRA retune from the champion, replaying earlier releases' pairs."""
        retune = self.settings.retune
        champion = self.store.champion()
        init = Path(champion.checkpoint) if champion else retune.initial_checkpoint
        config = self._critic_config() if init is None else None
        earlier = self._earlier(release)
        replayed = earlier[-retune.replay_releases :] if retune.replay_releases else []
        replay = [Path(self._pair_set(r).path) for r in replayed]
        out = self.workspace(release).critic
        settings = retune.train  # on the daemon's device
        job = RetuneJob(
            Path(self._pair_set(release).path),
            out,
            settings,
            init=init,
            replay=tuple(replay),
            config=config,
            feature_cache=self.feature_cache,
        )
        result = self.executor.data_parallel(run_retune, job, self.stop.is_set)
        if "stopped" in result:  # its state is saved: the next run resumes
            log.info("%s: retune %s", release.id, result["stopped"])
            raise Stopping
        if result["cut_short_by_time_budget"]:
            log.warning(
                "%s: the retune's time budget (%.0f s) stopped it after %d of %d steps",
                release.id,
                settings.time_budget_s,
                result["steps"],
                settings.steps,
            )
        version = self.store.critic_for(release.id) or CriticVersion(
            release_id=release.id, checkpoint=str(out)
        )
        version.parent_version = champion.mlflow_version if champion else None
        version.training = {
            **result,
            "init": str(init) if init else None,
            "replay": [str(p) for p in replay],
            "settings": settings.model_dump(
                mode="json", include={"steps", "batch_pairs", "learning_rate", "seed"}
            ),
            "pairs": self._pair_set(release).pairs,
            "replay_pairs": sum(self._pair_set(r).pairs for r in replayed),
        }
        return [version]

    def register(self, release: ReleaseRecord) -> list[Any]:
        version = self.store.critic_for(release.id)
        registered = self._register(release, version)
        self.critics.set_alias(CHALLENGER, registered.version)
        version.mlflow_version, version.run_id = registered.version, registered.run_id
        version.status = CHALLENGER
        return [version]

    def _register(self, release: ReleaseRecord, version: CriticVersion) -> RegisteredCritic:
        """The MLflow version of ``version``'s checkpoint (created only if missing)."""
        pair_set = self._pair_set(release)
        return self.critics.register(
            release.id,
            Path(version.checkpoint),
            tags={
                "eliq.generator": release.name,
                "eliq.pair_set_digest": pair_set.digest,
                "eliq.parent_version": version.parent_version or "",
            },
            metrics={
                f"held_out_accuracy.{k}": v
                for k, v in version.training.get("held_out_accuracy", {}).items()
            },
            history=_training_history(Path(version.checkpoint)),
            params=_run_params(version),
        )

    # -- the registry and the state agree ---------------------------------------------------

    def registry_problems(self) -> list[str]:
        """What MLflow lacks of the critic versions the state says it registered."""
        return self.critics.problems(self.store.critic_versions())

    def reregister(self) -> list[CriticVersion]:
        """Register every critic version of the state again from its release folder, in
        order, with its evaluations and aliases: the way back after the MLflow store was
        lost. Versions still there are kept (registration is idempotent)."""
        versions = [v for v in self.store.critic_versions() if v.mlflow_version]
        lost = [v.checkpoint for v in versions if not Path(v.checkpoint, "config.json").is_file()]
        if lost:
            raise FileNotFoundError(f"critic checkpoints missing from the release folders: {lost}")
        for version in versions:
            before = version.mlflow_version
            registered = self._register(self.store.release(version.release_id), version)
            version.mlflow_version, version.run_id = registered.version, registered.run_id
            evaluations = self.store.rows(EvaluationRecord, critic_version_id=version.id)
            self.critics.log_metrics(version.run_id, _metrics(evaluations))
            if version.gate:
                self.critics.tag_version(version.mlflow_version, _gate_tags(version))
            if before != version.mlflow_version:
                log.warning(
                    "%s: critic v%s is now v%s", version.release_id, before, registered.version
                )
            self.store.save(version)
        for version in versions:
            if version.status in (CHAMPION, CHALLENGER):
                self.critics.set_alias(version.status, version.mlflow_version)
        return versions

    def evaluate(self, release: ReleaseRecord) -> list[Any]:
        """Held-out pair accuracy of the challenger and its baseline (the champion, or for a
        first release the critic it started from) on the new release and on the earlier
        ones: the same positives the trainer held out, so neither critic trained on them.
        Each critic's outcomes are kept per pair set, so a critic ranks each pair once:
        the champion scored the earlier releases' pairs when it was a challenger, and a
        cycle scores only the new release's pairs and its new challenger. Of the earlier
        releases both rank the same bounded sample (``gate.forgetting_pairs``), so a
        challenger's cost does not grow with the history."""
        version = self.store.critic_for(release.id)
        training = self.settings.retune.train
        scopes = {
            "new": self._pair_sets([release]),
            "earlier": self._pair_sets(self._earlier(release)),
        }
        device = self.settings.device
        contenders = {
            "challenger": Critic.from_pretrained(version.checkpoint, device),
            "baseline": self._starting_critic(version),
        }
        rows = []
        for role, critic in contenders.items():
            fingerprint = critic.fingerprint()
            store = self.feature_store(critic)
            for scope, pair_sets in scopes.items():
                if not pair_sets:
                    continue
                digests = {name: digest for name, (_, digest) in pair_sets.items()}
                known = self.store.pair_outcomes(fingerprint, digests)
                roots = {name: root for name, (root, _) in pair_sets.items()}
                limit = self.settings.gate.forgetting_pairs if scope == "earlier" else None
                accuracy = held_out_accuracy(
                    critic, roots, training.held_out_fraction, training.seed, known, store, limit
                )
                self.store.keep_pair_outcomes(fingerprint, digests, accuracy.outcomes)
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
        for old in self.store.rows(EvaluationRecord, critic_version_id=version.id):
            self.store.delete(old)  # a re-run replaces, never doubles
        self.critics.log_metrics(version.run_id, _metrics(rows))
        return rows

    def check_drift(self, release: ReleaseRecord) -> list[Any]:
        """Critic drift (the critic the retune started from vs the challenger, ranking the
        anchor set) and generator shift (this release's scores vs the earlier releases')."""
        version = self.store.critic_for(release.id)
        drift, device = self.settings.drift, self.settings.device
        workspace = self.workspace(release)
        challenger = Critic.from_pretrained(version.checkpoint, device)
        anchors = self._anchors(release)
        parent = self.score_frame(self._starting_critic(version), anchors)
        current = self.score_frame(challenger, anchors)

        def save(
            kind: str, reference: pd.DataFrame, new: pd.DataFrame, checks: list[AxisCheck]
        ) -> DriftResult:
            tags = [kind, f"generator:{release.name}"]
            metadata = {"release": release.id}
            folder = workspace.drift(kind)
            return save_check(self.drift, reference, new, checks, folder, tags, metadata)

        results = {
            "critic": save("critic", parent, current, agreement_checks(parent, current, drift))
        }
        earlier = self._earlier_samples(release)
        if len(earlier):
            reference = self.score_frame(challenger, earlier)
            new = self.score_frame(challenger, self.samples(release))
            results["generator"] = save(
                "generator", reference, new, shift_checks(reference, new, drift)
            )
        rows = []
        for kind, result in results.items():
            rows.append(
                DriftCheck(
                    kind=kind,
                    release_id=release.id,
                    drifted=result.drifted,
                    summary=result.summary,
                    report_html=str(result.report_html),
                    report_json=str(result.report_json),
                )
            )
            self.critics.log_artifacts(version.run_id, result.report_html.parent, f"drift/{kind}")
            self.publish(kind, release, result)
        for old in self.store.rows(DriftCheck, release_id=release.id):
            if old.kind in results:
                self.store.delete(old)  # a re-run replaces, never doubles
        return rows

    def decide(self, release: ReleaseRecord) -> list[Any]:
        """Promote the challenger when it passes the gate (and the mode is auto), else hold."""
        version = self.store.critic_for(release.id)
        evaluations = self.store.rows(EvaluationRecord, critic_version_id=version.id)
        gate = gate_decision(evaluations, self.settings.gate, version.parent_version is None)
        version.gate = gate
        version.decided_at = utcnow()
        rows: list[Any] = [version]
        if gate["passed"] and self.settings.gate.mode == "auto":
            rows += self._promote(version)
        else:
            version.status = "held"
            if gate["passed"]:
                gate["why"] += "; manual mode: waiting for `eliq-daemon promote`"
        self.critics.tag_version(version.mlflow_version, _gate_tags(version))
        return rows

    def promote(self, mlflow_version: str, by: str = "hand") -> CriticVersion:
        """Make a held (or any) critic version the champion by hand: recorded on its gate
        (what the automatic gate said stays beside it) and announced like an automatic one."""
        version = next(
            (v for v in self.store.critic_versions() if v.mlflow_version == str(mlflow_version)),
            None,
        )
        if version is None:
            raise KeyError(f"no critic version {mlflow_version} in this daemon's state")
        automatic = version.gate.get("why", "no automatic decision")
        version.gate = {
            **version.gate,
            "manual": {"by": by, "at": utcnow().isoformat(), "overrode": automatic},
            "why": f"promoted by {by} (the gate had said: {automatic})",
        }
        version.decided_at = utcnow()
        self.store.save(*self._promote(version))
        self.critics.tag_version(version.mlflow_version, _gate_tags(version))
        self.alerter.send(
            _decision_alert(
                version,
                f"promoted to champion by {by}",
                f"critic:{version.release_id}:manual:{version.decided_at.isoformat()}",
            )
        )
        return version

    def _promote(self, version: CriticVersion) -> list[CriticVersion]:
        self.critics.set_alias(CHAMPION, version.mlflow_version)
        if self.critics.aliases().get(version.mlflow_version, []).count(CHALLENGER):
            self.critics.delete_alias(CHALLENGER)
        retired = []
        for other in self.store.critic_versions():
            if other.status == CHAMPION and other.id != version.id:
                other.status = "retired"
                retired.append(other)
        version.status = CHAMPION
        return [*retired, version]

    def announce(self, release: ReleaseRecord) -> list[Any]:
        version = self.store.critic_for(release.id)
        for check in self.store.rows(DriftCheck, release_id=release.id):
            if check.kind in ("critic", "generator"):
                self.raise_drift(check, release)
        outcome = "promoted to champion" if version.status == CHAMPION else "held"
        self.alerter.send(_decision_alert(version, outcome, f"critic:{release.id}"))
        return []

    def raise_drift(self, check: DriftCheck, release: ReleaseRecord) -> None:
        """Alert the breaches of ``check`` (one incident per kind of breach, however many
        checks repeat it) and close the incidents its passing checks contradict."""
        what = {
            "critic": "Critic drift",
            "generator": "Generator shift",
            "watch": "Generator shift",
        }
        for axis_check in check.summary.get("checks", []):
            topic, status = incident_topic(axis_check), axis_check["status"]
            if status == "alert":
                if axis_check["measure"] == "shift":
                    opposite = "fell" if axis_check["direction"] == "rose" else "rose"
                    self.alerter.clear(
                        f"shift:{axis_check['axis']}:{opposite}", axis_check["words"]
                    )
                self.alerter.breach(
                    topic,
                    Alert(
                        title=f"{what[check.kind]} on {release.name}: {axis_check['words']}",
                        summary=f"{axis_check['words']}; release {release.id}",
                        severity="warning",
                        kind="drift",
                        dedup_key=topic,
                        details={"release": release.id, "check": check.id, **axis_check},
                        links={"report": self.report_url(check)},
                    ),
                )
            elif status == "ok":
                closes = (
                    [f"{topic}:rose", f"{topic}:fell"]
                    if axis_check["measure"] == "shift"
                    else [topic]
                )
                for closed in closes:
                    self.alerter.clear(closed, axis_check["words"])

    def report_url(self, check: DriftCheck) -> str:
        """Where people open ``check``'s report: the status API's page for it."""
        return f"{self.settings.base_url}/reports/{check.id}"

    # -- helpers ------------------------------------------------------------------------

    def _pair_set(self, release: ReleaseRecord) -> PairSetRecord:
        return self.store.rows(PairSetRecord, release_id=release.id)[0]

    def _earlier(self, release: ReleaseRecord) -> list[ReleaseRecord]:
        return [
            r for r in self.store.releases([ReleaseState.done]) if r.sequence < release.sequence
        ]

    def _pair_sets(self, releases: list[ReleaseRecord]) -> dict[str, tuple[Path, str]]:
        """Each release's pair set, named by release: its root and a key to what critics
        ranked of it (the release and the pair set's content, so a rebuild starts over)."""
        records = {r.id: self._pair_set(r) for r in releases}
        return {i: (Path(rec.path), f"{i}@{rec.digest}") for i, rec in records.items()}

    def feature_store(self, critic: Critic) -> FeatureStore:
        """Vision features kept on disk under ``data_dir/features`` by image content and
        vision weights: each image goes through the backbone once, in every step and
        cycle that sees it (retune, its replay, evaluation)."""
        return FeatureStore(critic.model, critic.device, cache_dir=self.feature_cache)

    def score_frame(self, critic: Critic, frame: pd.DataFrame) -> pd.DataFrame:
        """Prompt, quality and alignment of each image of ``frame`` (columns image, prompt),
        with vision features through :meth:`feature_store`: re-scoring earlier releases'
        samples costs a frozen-vision critic only its heads."""
        scored = score_table(critic, frame, progress=False, store=self.feature_store(critic))
        return scored[["prompt", "quality", "alignment"]]

    @property
    def feature_cache(self) -> Path:
        return self.settings.data_dir / "features"

    def samples(self, release: ReleaseRecord, limit: int | None = None) -> pd.DataFrame:
        """The release's sampled images and their prompts (columns image, prompt)."""
        samples = self.workspace(release).samples
        positives = read_positives(samples / "manifest.csv", samples)[:limit]
        return pd.DataFrame(
            {"image": [str(p.image) for p in positives], "prompt": [p.prompt for p in positives]}
        )

    def _earlier_samples(self, release: ReleaseRecord) -> pd.DataFrame:
        frames = [self.samples(r) for r in self._earlier(release)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _anchors(self, release: ReleaseRecord) -> pd.DataFrame:
        """The fixed anchor set: the first images of each earlier release plus the user's
        folder; for the very first release, its own first images."""
        per = self.settings.drift.anchor_images_per_release
        frames = [self.samples(r, per) for r in self._earlier(release)]
        folder = self.settings.drift.anchor_folder
        if folder is not None:
            found = positives_in_folder(folder)
            frames.append(
                pd.DataFrame(
                    {"image": [str(p.image) for p in found], "prompt": [None] * len(found)}
                )
            )
        if not frames:
            frames = [self.samples(release, per)]
        return pd.concat(frames, ignore_index=True)

    def _starting_critic(self, version: CriticVersion) -> Critic:
        """The critic ``version`` was retuned from: a checkpoint, or the backbones alone
        with untrained parts initialised as the retune's seed initialised them (the same
        critic every time, so what it ranked once is reused)."""
        device = self.settings.device
        init = version.training.get("init")
        if init:
            return Critic.from_pretrained(init, device)
        return Critic.from_config(
            self._critic_config(), device, seed=self.settings.retune.train.seed
        )

    def _critic_config(self) -> CriticConfig | None:
        path = self.settings.retune.critic_config
        return CriticConfig.model_validate_json(path.read_text()) if path else None


def _release_row(spec: RegistrySpec, release: Release) -> ReleaseRecord:
    return ReleaseRecord(
        id=release.id,
        registry_name=spec.name,
        source=release.source,
        name=release.name,
        appeared_at=release.appeared_at,
        sequence=0,
        loader=release.loader.model_dump(mode="json"),
        meta=release.model_dump(mode="json")["metadata"],
    )


def _pair_set_digest(pair_set: PairSet) -> str:
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


def _training_history(checkpoint: Path) -> list[dict]:
    state = checkpoint / "state" / "state.json"
    return json.loads(state.read_text())["history"] if state.is_file() else []


def _run_params(version: CriticVersion) -> dict[str, str]:
    """What the retune was run with, as the run's params: its settings, the pairs it saw
    and the LoRA of the critic it produced."""
    training = version.training
    params = {f"train.{key}": value for key, value in training.get("settings", {}).items()}
    params |= {
        "train.steps_run": training.get("steps"),
        "pairs.new": training.get("pairs"),
        "pairs.replay": training.get("replay_pairs"),
        "pairs.replay_releases": len(training.get("replay", [])),
    }
    config = CriticConfig.load(Path(version.checkpoint))
    for side, lora in (("vision", config.vision_lora), ("text", config.text_lora)):
        params[f"lora.{side}"] = f"rank {lora.rank}, alpha {lora.alpha}" if lora.enabled else "off"
    return {key: str(value) for key, value in params.items() if value is not None}


def _gate_tags(version: CriticVersion) -> dict[str, str]:
    """The gate's outcome on the MLflow version, so the registry alone says why."""
    gate = version.gate
    tags = {
        "eliq.gate.passed": str(bool(gate.get("passed"))).lower(),
        "eliq.gate.why": str(gate.get("why", "")),
        "eliq.status": version.status,
    }
    if "manual" in gate:
        tags["eliq.promoted_by"] = str(gate["manual"]["by"])
    return tags


def _metrics(rows: list[EvaluationRecord]) -> dict[str, float]:
    return {
        f"eval.{row.role}.{row.scope}.accuracy": row.accuracy
        for row in rows
        if row.accuracy is not None
    }


def _decision_alert(version: CriticVersion, outcome: str, dedup_key: str) -> Alert:
    """The announcement of a gate decision or a promotion by hand, with the gate's words."""
    return Alert(
        title=f"Critic v{version.mlflow_version} {outcome}",
        summary=f"Retuned on {version.release_id}; gate: {version.gate.get('why', 'no decision')}",
        severity="info",
        kind="release",
        dedup_key=dedup_key,
        details={
            "release": version.release_id,
            "version": version.mlflow_version,
            "gate": version.gate,
        },
    )
