"""A scoring run as one self-contained HTML file (``eliq score --report report.html``).

The file needs nothing but a browser: styles are inline, histograms are SVG, thumbnails are
JPEG data URIs, and it fetches nothing, so it can be mailed or attached to a ticket. It
shows what a reader asks of a run first: how many images and how many failed, each axis's
mean with its 95% interval, the distribution, the best and worst images, and, when the rows
fall into groups (a manifest column, or the subfolders of a folder), a table per group.
Every text that comes from the input (file names, prompts, groups) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from eliq import __version__
from eliq.intervals import Interval, mean
from eliq.pairs.positives import read_manifest

log = logging.getLogger(__name__)
AXES = ("quality", "alignment")
BINS = 20
THUMBNAIL_PIXELS = 160


@dataclass(frozen=True)
class AxisSummary:
    """One axis over the scored images: raw mean with its interval, and its spread."""

    n: int
    mean: Interval | None  # None under 2 values
    median: float
    low: float
    high: float
    scaled_mean: float | None  # on the 0-100 scale, where the critic has one


def summarize(records: Sequence[dict], axis: str) -> AxisSummary | None:
    """The axis over the records that have a score on it; None when none has."""
    values = _values(records, axis)
    if len(values) == 0:
        return None
    scaled = _values(records, f"{axis}_scaled")
    return AxisSummary(
        n=len(values),
        mean=mean(values) if len(values) >= 2 else None,
        median=float(np.median(values)),
        low=float(values.min()),
        high=float(values.max()),
        scaled_mean=float(scaled.mean()) if len(scaled) == len(values) else None,
    )


def row_groups(source: Path, images: Sequence[Path], column: str | None) -> list[str] | None:
    """One group label per image of a run over ``source``: the manifest's ``column``; or,
    for a folder, each image's first subfolder when there are several; else None."""
    source = Path(source)
    if column is not None:
        if source.is_dir():
            raise ValueError("--group-by names a manifest column; a folder groups by subfolder")
        rows = read_manifest(source, [column])
        if not any(column in row for _, row in rows):
            raise ValueError(f"{source}: no column {column!r} to group by")
        return [str(row.get(column) or "") for _, row in rows]
    if not source.is_dir():
        return None
    groups = []
    for image in images:
        parts = Path(image).relative_to(source).parts
        groups.append(parts[0] if len(parts) > 1 else ".")
    return groups if len(set(groups)) > 1 else None


def render_report(
    records: Sequence[dict],
    groups: Sequence[str] | None = None,
    title: str = "eliq score",
    thumbnails: int = 6,
) -> str:
    """The report's HTML. ``groups``: one label per record, for the table per group."""
    if groups is not None and len(groups) != len(records):
        raise ValueError(f"{len(records)} records but {len(groups)} group labels")
    scored = [r for r in records if "error" not in r]
    failed = [r for r in records if "error" in r]
    versions = sorted({r["critic_version"] for r in scored if r.get("critic_version")})
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<p class='meta'>{len(scored)} images scored, {len(failed)} could not be read; "
        f"critic {_e(', '.join(versions) or 'unknown')}; eliq {_e(__version__)}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Higher is better on both axes.</p>",
        _summary_table(scored),
    ]
    for axis in AXES:
        if summarize(scored, axis) is not None:
            parts += [_histogram(scored, axis), _extremes(scored, axis, thumbnails)]
    if groups is not None:
        parts.append(_group_table(records, groups))
    if failed:
        parts.append(_failures(failed))
    body = "\n".join(parts)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def write_report(records: Sequence[dict], out: Path, groups: Sequence[str] | None = None) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(records, groups), encoding="utf-8")
    log.info("report written to %s", out)


def _summary_table(scored: Sequence[dict]) -> str:
    rows = []
    for axis in AXES:
        summary = summarize(scored, axis)
        if summary is None:
            rows.append(f"<tr><th>{axis}</th><td colspan='5'>no scores (no prompts)</td></tr>")
            continue
        scaled = "" if summary.scaled_mean is None else f"{summary.scaled_mean:.1f}"
        rows.append(
            f"<tr><th>{axis}</th><td>{summary.n}</td><td>{_mean(summary)}</td>"
            f"<td>{summary.median:.3f}</td><td>{summary.low:.3f} … {summary.high:.3f}</td>"
            f"<td>{scaled}</td></tr>"
        )
    return (
        "<h2>Summary</h2><table id='summary'><tr><th>axis</th><th>n</th>"
        "<th>mean [95% interval]</th><th>median</th><th>range</th><th>mean on 0-100</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _histogram(scored: Sequence[dict], axis: str) -> str:
    """An SVG histogram of the axis, on the 0-100 scale where every image has it."""
    on_100 = len(_values(scored, f"{axis}_scaled")) == len(_values(scored, axis))
    key = f"{axis}_scaled" if on_100 else axis
    values = _values(scored, key)
    counts, edges = np.histogram(values, bins=BINS, range=(0, 100) if on_100 else None)
    width, height, pad = 640, 200, 36
    tallest = max(int(counts.max()), 1)
    bar = (width - 2 * pad) / BINS
    bars = []
    for i, count in enumerate(counts):
        h = (height - 2 * pad) * count / tallest
        x, y = pad + i * bar, height - pad - h
        label = f"{edges[i]:.3g} to {edges[i + 1]:.3g}: {count} images"
        bars.append(
            f"<rect x='{x:.1f}' y='{y:.1f}' width='{bar - 1:.1f}' height='{h:.1f}'>"
            f"<title>{label}</title></rect>"
        )
    scale = "0-100 scale" if on_100 else "raw score"
    return (
        f"<h2>{axis.capitalize()}: distribution</h2>"
        f"<svg class='histogram' id='histogram-{axis}' viewBox='0 0 {width} {height}' "
        f"role='img' aria-label='{axis} histogram'>{''.join(bars)}"
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}'/>"
        f"<text x='{pad}' y='{height - 12}'>{edges[0]:.3g}</text>"
        f"<text x='{width - pad}' y='{height - 12}' text-anchor='end'>{edges[-1]:.3g}</text>"
        f"<text x='{width / 2}' y='{height - 12}' text-anchor='middle'>{axis} ({scale})</text>"
        f"<text x='{pad}' y='{pad - 10}'>{tallest} image{'s' * (tallest > 1)}</text></svg>"
    )


def _extremes(scored: Sequence[dict], axis: str, count: int) -> str:
    ranked = sorted((r for r in scored if _finite(r.get(axis))), key=lambda r: r[axis])
    # no image among both the best and the worst, unless there is only one
    count = max(min(count, len(ranked) // 2), min(len(ranked), 1))
    best, worst = ranked[::-1][:count], ranked[:count]
    return (
        f"<h2>{axis.capitalize()}: best and worst</h2>"
        f"<h3>best</h3><div class='strip' id='best-{axis}'>{_figures(best, axis)}</div>"
        f"<h3>worst</h3><div class='strip' id='worst-{axis}'>{_figures(worst, axis)}</div>"
    )


def _figures(records: Sequence[dict], axis: str) -> str:
    figures = []
    for record in records:
        source = _thumbnail(Path(record["image"]))
        picture = (
            f"<img class='thumb' alt='{_e(Path(record['image']).name)}' src='{source}'>"
            if source
            else "<div class='missing'>not readable now</div>"
        )
        prompt = f"<br><i>{_e(record['prompt'])}</i>" if record.get("prompt") else ""
        figures.append(
            f"<figure>{picture}<figcaption>{axis} {record[axis]:.3f}<br>"
            f"{_e(Path(record['image']).name)}{prompt}</figcaption></figure>"
        )
    return "".join(figures)


def _thumbnail(path: Path) -> str | None:
    """A JPEG data URI of the image at most THUMBNAIL_PIXELS on its long side."""
    try:
        with Image.open(path) as image:
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=80)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _group_table(records: Sequence[dict], groups: Sequence[str]) -> str:
    by_group: dict[str, list[dict]] = {}
    for record, group in zip(records, groups, strict=True):
        by_group.setdefault(str(group), []).append(record)
    summaries = {
        name: {axis: summarize([r for r in rows if "error" not in r], axis) for axis in AXES}
        for name, rows in by_group.items()
    }

    def order(name: str) -> float:  # best mean quality first
        quality = summaries[name]["quality"]
        if quality is None:
            return float("inf")
        return -(quality.mean.estimate if quality.mean else quality.median)

    rows = []
    for name in sorted(by_group, key=order):
        cells = []
        for axis in AXES:
            summary = summaries[name][axis]
            cells.append("<td>–</td>" if summary is None else f"<td>{_mean(summary)}</td>")
        failed = sum("error" in r for r in by_group[name])
        rows.append(
            f"<tr><th>{_e(name)}</th><td>{len(by_group[name])}</td><td>{failed}</td>"
            + "".join(cells)
            + "</tr>"
        )
    return (
        "<h2>Per group</h2><table id='groups'><tr><th>group</th><th>images</th>"
        "<th>unreadable</th><th>quality mean [95%]</th><th>alignment mean [95%]</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _failures(failed: Sequence[dict], shown: int = 50) -> str:
    items = "".join(
        f"<li>{_e(Path(r['image']).name)}: {_e(r['error'])}</li>" for r in failed[:shown]
    )
    more = f"<p>… and {len(failed) - shown} more</p>" if len(failed) > shown else ""
    return f"<h2>Could not be read</h2><ul id='failures'>{items}</ul>{more}"


def _values(records: Sequence[dict], key: str) -> np.ndarray:
    return np.array([r[key] for r in records if _finite(r.get(key))], dtype=float)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and bool(np.isfinite(value))


def _mean(summary: AxisSummary) -> str:
    interval = summary.mean
    if interval is None:
        return f"{summary.median:.3f} (one image, no interval)"
    return f"{interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; } h3 { font-size: 1em; }
.meta { color: #555; }
table { border-collapse: collapse; } th, td { padding: .3em .8em; border-bottom: 1px solid #ddd;
  text-align: left; }
svg.histogram { width: 100%; max-width: 640px; } svg rect { fill: #4c78a8; }
svg line { stroke: #333; } svg text { font-size: 12px; fill: #333; }
.strip { display: flex; flex-wrap: wrap; gap: .8em; }
figure { margin: 0; width: 170px; } figcaption { font-size: 12px; word-break: break-all; }
img.thumb { max-width: 160px; max-height: 160px; display: block; }
.missing { width: 160px; height: 60px; background: #eee; font-size: 12px; }
"""
