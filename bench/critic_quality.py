"""The trained critic against its baselines on AGIQA-3K, all measured in one run.

    python bench/critic_quality.py --checkpoint artifacts/critic-reference [--limit N]

Prints one Markdown table: SRCC/PLCC for quality (vs ``mos_quality``) and alignment (vs
``mos_align``), overall, mean within generators, and over generator means. Rows: the
trained critic; its untrained prior alone (what training added); zero-shot proxies from the
same pre-trained backbones; PIQE, BRISQUE and the variance of the Laplacian. Human scores
are used to evaluate, never to train.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import date
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).parent))

from baselines import ZeroShot, brisque_score, laplacian_variance, piqe_score  # noqa: E402

from eliq.critic import Critic  # noqa: E402
from eliq.evaluation import AGIQA_AXES, axis_report, read_agiqa3k, score_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--root", type=Path, default=Path("../shared/datasets/agiqa3k"))
    parser.add_argument("--limit", type=int, help="an even sample of about N images")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    frame = read_agiqa3k(args.root)
    if args.limit:
        frame = frame.iloc[:: max(1, len(frame) // args.limit)].reset_index(drop=True)
    critic = Critic.from_pretrained(args.checkpoint, args.device)
    scored = score_table(critic, frame, with_prior=True)  # the prior from the same pass
    zero_shot = ZeroShot(critic.config.crops)
    columns: dict[str, list[float]] = {
        k: [] for k in ("zs_quality", "zs_alignment", "piqe", "brisque", "laplacian")
    }
    for path, prompt in tqdm(
        zip(frame["image"], frame["prompt"], strict=True), total=len(frame), desc="baselines"
    ):
        quality, alignment = zero_shot(path, prompt)
        columns["zs_quality"].append(quality)
        columns["zs_alignment"].append(alignment)
        columns["piqe"].append(piqe_score(path))
        columns["brisque"].append(brisque_score(path))
        columns["laplacian"].append(laplacian_variance(path))
    scored = scored.assign(**columns)
    rows = [
        ("eliq critic (trained label-free)", "quality", "alignment"),
        ("its prior alone (no training)", "prior_quality", "prior_alignment"),
        ("zero-shot: ImageNet entropy / MiniLM x class names", "zs_quality", "zs_alignment"),
        ("PIQE", "piqe", None),
        ("BRISQUE (trained on LIVE opinion scores)", "brisque", None),
        ("variance of the Laplacian", "laplacian", None),
    ]
    print(
        f"AGIQA-3K ({len(scored)} images, 7 generators), {date.today()}, "
        f"{platform.machine()} CPU x{os.cpu_count()}, checkpoint {args.checkpoint}\n"
    )
    header = (
        "| measure | quality SRCC | quality PLCC | quality SRCC within generators | "
        "quality SRCC over generator means | alignment SRCC | alignment PLCC | "
        "alignment SRCC within generators | alignment SRCC over generator means |"
    )
    print(header)
    print("|---" * 9 + "|")
    for name, quality_column, alignment_column in rows:
        cells = [name]
        for column, human in (
            (quality_column, AGIQA_AXES["quality"]),
            (alignment_column, AGIQA_AXES["alignment"]),
        ):
            if column is None:
                cells += ["–"] * 4
                continue
            report = axis_report(scored, column, human, "generator")
            cells += [
                f"{report.overall.srcc:.3f}",
                f"{report.overall.plcc:.3f}",
                f"{report.within_group_srcc:.3f}",
                f"{report.group_means.srcc:.3f}",
            ]
        print("| " + " | ".join(cells) + " |")
    Path("data").mkdir(exist_ok=True)
    pd.DataFrame(scored).to_csv(Path("data") / "critic_quality_scores.csv", index=False)


if __name__ == "__main__":
    main()
