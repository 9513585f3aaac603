"""The reference critic the package ships (``eliq/data/critics/reference/``), built once
from its recipe and committed, so every install, wheel and CI run has one critic version.

* ``record``: write ``built_from.json`` beside the weights: what they were built from (the
  recipe's and the build commands' digests, the pair factory's and trainer's versions, the
  backbones' revision) and the weights' own digest (``make ship-critic`` runs it).
* ``verify``: the record against this checkout; a test runs it, so a change to those
  inputs without a rebuild fails.
* ``compare FOLDER``: a fresh build of the recipe against the shipped weights on the shared
  AGIQA-3K images (``make check-critic``): Spearman of the scores per axis, which must be at
  least 0.999, and the largest absolute difference. Float kernels differ between CPUs, so
  bytes are not expected to match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "eliq" / "data" / "critics" / "reference"
RECIPE = ROOT / "recipes" / "critic-reference" / "recipe.json"
RECORD = SHIPPED / "built_from.json"
MIN_SPEARMAN = 0.999

log = logging.getLogger("shipped_critic")


def build_rule(makefile: Path = ROOT / "Makefile") -> str:
    """The text of the Makefile's ``critic-build`` rule: the pair sets and the training
    command the weights come from."""
    lines = makefile.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("critic-build:"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[start:end])


def build_inputs() -> dict[str, object]:
    """What the shipped weights depend on, as this checkout has it."""
    from eliq.critic import Critic
    from eliq.pairs.factory import BUILD_VERSION
    from eliq.train.recipe import Recipe
    from eliq.train.trainer import TRAINER_VERSION

    critic = Critic.from_config(Recipe.load(RECIPE).critic, device="cpu")
    return {
        "recipe": str(RECIPE.relative_to(ROOT)),
        "recipe_sha256": _sha256(RECIPE.read_bytes()),
        "build_rule_sha256": _sha256(build_rule().encode()),
        "pair_factory_version": BUILD_VERSION,
        "trainer_version": TRAINER_VERSION,
        "backbone_revision": critic.config.backbone_revision,
    }


def current() -> dict[str, object]:
    """The build inputs and the digest of the weights now in the package."""
    weights = (SHIPPED / "model.safetensors").read_bytes()
    return build_inputs() | {"model_sha256": _sha256(weights)}


def record() -> dict[str, object]:
    entry = current()
    RECORD.write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    return entry


def stale_inputs() -> list[str]:
    """What changed since the shipped weights were built and recorded (empty: nothing)."""
    recorded, now = json.loads(RECORD.read_text(encoding="utf-8")), current()
    keys = sorted(now.keys() | recorded.keys())
    return [key for key in keys if now.get(key) != recorded.get(key)]


def compare(folder: Path, limit: int | None = None) -> dict[str, dict[str, float]]:
    """Spearman and the largest absolute difference, per axis, between the shipped
    critic's scores and ``folder``'s on the shared AGIQA-3K images."""
    import numpy as np
    from scipy.stats import spearmanr

    from eliq.critic import Critic
    from eliq.evaluation import default_agiqa3k_root, read_agiqa3k, sample_rows

    frame = sample_rows(read_agiqa3k(default_agiqa3k_root()), limit)
    images, prompts = list(frame["image"]), list(frame["prompt"])
    scores = {}
    for name, source in (("shipped", SHIPPED), ("rebuilt", Path(folder))):
        critic = Critic.from_pretrained(source, device="cpu")
        log.info("scoring %d images with the %s critic", len(images), name)
        cache = critic.feature_cache(ROOT / "artifacts" / "features")  # the builds' own
        scores[name] = critic.score(images, prompts, features=cache)
    result = {}
    for axis in ("quality", "alignment"):
        a, b = (np.array([getattr(s, axis) for s in scores[n]]) for n in ("shipped", "rebuilt"))
        result[axis] = {
            "spearman": float(spearmanr(a, b).statistic),
            "max_abs_difference": float(np.abs(a - b).max()),
        }
    return result


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("record", help="write built_from.json beside the shipped weights")
    commands.add_parser("verify", help="check the record against this checkout")
    against = commands.add_parser("compare", help="a fresh build against the shipped weights")
    against.add_argument("folder", type=Path)
    against.add_argument("--limit", type=int, help="an even sample of about N images")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "record":
        log.info(json.dumps(record(), indent=2))
        return 0
    if args.command == "verify":
        stale = stale_inputs()
        if stale:
            log.error("the shipped critic is stale (%s): run `make ship-critic`", ", ".join(stale))
        return 1 if stale else 0
    result = compare(args.folder, args.limit)
    log.info("| axis | Spearman with the shipped critic | largest absolute difference |")
    log.info("|---|---|---|")
    for axis, row in result.items():
        log.info("| %s | %.5f | %.2e |", axis, row["spearman"], row["max_abs_difference"])
    worst = min(row["spearman"] for row in result.values())
    if worst < MIN_SPEARMAN:
        log.error("Spearman %.5f is under %.3f: the build does not reproduce", worst, MIN_SPEARMAN)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
