"""Do two critics trained by the same recipe score alike? (``make critic`` twice, e.g. one
run on a quiet machine and one beside a CPU-heavy job.)

    python bench/critic_reproducibility.py A_CHECKPOINT B_CHECKPOINT [--root AGIQA] [--features DIR]

Scores every image of the shared set with both critics (vision features through one disk
cache, so the second critic costs only its heads) and prints a Markdown table of the
largest score difference per axis, then each critic's steps, training time and SRCC
against the human scores (read only to evaluate).
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import numpy as np

from eliq.critic import Critic
from eliq.evaluation import AGIQA_AXES, axis_report, read_agiqa3k, score_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--root", type=Path, default=Path("../shared/datasets/agiqa3k"))
    parser.add_argument("--features", type=Path, default=Path("artifacts/features"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    frame = read_agiqa3k(args.root)
    scores, runs = [], []
    for checkpoint in (args.a, args.b):
        critic = Critic.from_pretrained(checkpoint, args.device)
        scores.append(score_table(critic, frame, features=critic.feature_cache(args.features)))
        runs.append(json.loads((checkpoint / "training.json").read_text()))
    print(f"{date.today()}, {platform.machine()}, {len(frame)} images of {args.root}\n")
    print("| axis | largest difference | mean difference |")
    print("|---|---|---|")
    for axis in ("quality", "alignment"):
        gap = np.abs(scores[0][axis].to_numpy(float) - scores[1][axis].to_numpy(float))
        print(f"| {axis} | {gap.max():.2e} | {gap.mean():.2e} |")
    print("\n| critic | steps | training s | quality SRCC | within | alignment SRCC | within |")
    print("|---|---|---|---|---|---|---|")
    for name, run, scored in zip((args.a, args.b), runs, scores, strict=True):
        report = {
            axis: axis_report(scored, axis, human, "generator")
            for axis, human in AGIQA_AXES.items()
        }
        q, a = report["quality"], report["alignment"]
        print(
            f"| {name} | {run['steps']} | {run.get('train_seconds', '?')} | "
            f"{q.overall.srcc:.3f} | {q.within_group_srcc:.3f} | "
            f"{a.overall.srcc:.3f} | {a.within_group_srcc:.3f} |"
        )


if __name__ == "__main__":
    main()
