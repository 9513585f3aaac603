"""``eliq score`` end to end on image files: decoding, views, critic, JSON lines.

    python bench/score_files.py --checkpoint artifacts/critic-reference [--images 1000]

Scores the first ``--images`` 512x512 JPEGs of AGIQA-3K (prompts from its manifest) with
the real command line, once per setting (loader workers, runtime), interleaved over
``--repeats`` rounds, and prints a Markdown table of the images/s each run printed
(median and range). Scores only; no human score is read.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import torch

from eliq.evaluation import read_agiqa3k

SETTINGS = {
    "torch, no workers": ["--workers", "0"],
    "torch, 1 worker": ["--workers", "1"],
    "onnxruntime, no workers": ["--runtime", "onnxruntime", "--workers", "0"],
    "onnxruntime, 1 worker": ["--runtime", "onnxruntime", "--workers", "1"],
}
RATE = re.compile(r"([\d.]+) images/s")


def run(checkpoint: Path, manifest: Path, out: Path, options: list[str]) -> float:
    """One ``eliq score`` run; the images/s it printed."""
    command = [
        sys.executable,
        "-m",
        "eliq.cli",
        "score",
        str(manifest),
        "--checkpoint",
        str(checkpoint),
    ]
    printed = subprocess.run(
        [*command, "--out", str(out), "--device", "cpu", *options],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "400"},
    ).stdout
    return float(RATE.findall(printed)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--root", type=Path, default=Path("../shared/datasets/agiqa3k"))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frame = read_agiqa3k(args.root.resolve()).head(args.images)
    folder = Path(tempfile.mkdtemp(prefix="eliq-score-files-"))
    manifest = folder / "manifest.csv"
    frame[["image", "prompt"]].to_csv(manifest, index=False)
    rates: dict[str, list[float]] = {label: [] for label in SETTINGS}
    for _ in range(args.repeats):
        for label, options in SETTINGS.items():
            rates[label].append(run(args.checkpoint, manifest, folder / "out.jsonl", options))
    print(
        f"`eliq score` on {len(frame)} AGIQA-3K JPEGs (512x512, with prompts), {date.today()}, "
        f"{platform.machine()} CPU x{os.cpu_count()}, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats} interleaved runs\n"
    )
    table = pd.DataFrame(
        [
            {
                "setting": label,
                "images/s (median)": statistics.median(values),
                "range": f"{min(values):.1f}–{max(values):.1f}",
            }
            for label, values in rates.items()
        ]
    )
    print(table.to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()
