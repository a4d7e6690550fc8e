"""Small inline SVG pictures for report.html: trend of findings, latency distribution, reachability matrix.

Pure string builders with no dependency: the report must open offline. Every
label is escaped, because subjects and model names come from the target.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

COLORS = {"fail": "#c62828", "error": "#ef6c00", "waived": "#6a1b9a", "pass": "#2e7d32", "bar": "#1565c0"}


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{_e(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{_e(label)}</title>" + "".join(body) + "</svg>"
    )


def run_label(run: str) -> str:
    """``20261122T084658Z`` → ``11-22 08:46``: short enough to sit under a bar."""
    m = re.fullmatch(r"\d{4}(\d{2})(\d{2})T(\d{2})(\d{2})\d{2}Z(-\d+)?", run)
    return f"{m[1]}-{m[2]} {m[3]}:{m[4]}{m[5] or ''}" if m else run[-13:]


def trend_chart(points: Sequence[Mapping[str, Any]], width: int = 640, height: int = 200) -> str:
    """Bars of failures and errors per run, oldest left; empty string when there is nothing to compare."""
    if len(points) < 2:
        return ""
    left, bottom, top = 40, 40, 16
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(max(int(p.get("fail", 0)), int(p.get("error", 0))) for p in points) or 1
    slot = plot_w / len(points)
    bar = max(2.0, min(18.0, slot / 3))
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#555"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="10">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="10">0</text>',
    ]
    for i, p in enumerate(points):
        x0 = left + i * slot + slot / 2 - bar
        for j, key in enumerate(("fail", "error")):
            value = int(p.get(key, 0))
            h = plot_h * value / peak
            body.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[key]}"><title>{_e(p.get("run", ""))}: {value} {key}</title></rect>'
            )
        if len(points) <= 12 or i in (0, len(points) - 1):
            label = run_label(str(p.get("run", "")))
            body.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f'font-size="9">{_e(label)}</text>'
            )
    body.append(
        f'<rect x="{left}" y="{height - 14}" width="10" height="10" fill="{COLORS["fail"]}"/>'
        f'<text x="{left + 14}" y="{height - 5}" font-size="10">fail</text>'
        f'<rect x="{left + 50}" y="{height - 14}" width="10" height="10" fill="{COLORS["error"]}"/>'
        f'<text x="{left + 64}" y="{height - 5}" font-size="10">error</text>'
    )
    return _svg(width, height, body, "findings per run")


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        return None
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return out if all(math.isfinite(v) for v in out) else None


def latency_histogram_data(evidence: Mapping[str, Any]) -> tuple[list[float], list[int], dict[str, float]] | None:
    """(bucket edges, counts, percentiles) from raw samples or a ready histogram in evidence."""
    samples = _numbers(evidence.get("latencies_ms"))
    if samples:
        ordered = sorted(samples)
        lo, hi = ordered[0], ordered[-1]
        n_bins = max(1, min(24, int(math.sqrt(len(ordered)))))
        width = (hi - lo) / n_bins or 1.0
        edges = [lo + i * width for i in range(n_bins + 1)]
        counts = [0] * n_bins
        for v in ordered:
            counts[min(n_bins - 1, int((v - lo) / width))] += 1
        pct = {f"p{q}": _percentile(ordered, q / 100) for q in (50, 90, 99)}
        return edges, counts, pct
    hist = evidence.get("latency_histogram")
    if isinstance(hist, Mapping):
        edges = _numbers(hist.get("bounds_ms"))
        counts = _numbers(hist.get("counts"))
        if edges and counts and len(edges) == len(counts) + 1:
            pct = {k: float(v) for k, v in (hist.get("percentiles_ms") or {}).items() if _numbers([v])}
            return edges, [int(c) for c in counts], pct
    return None


def latency_chart(evidence: Mapping[str, Any], width: int = 520, height: int = 180) -> str:
    data = latency_histogram_data(evidence)
    if data is None:
        return ""
    edges, counts, pct = data
    left, bottom, top = 40, 32, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0
    peak = max(counts) or 1

    def x_of(v: float) -> float:
        return left + plot_w * (v - lo) / span

    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#555"/>']
    for i, c in enumerate(counts):
        x, w = x_of(edges[i]), max(1.0, x_of(edges[i + 1]) - x_of(edges[i]) - 1)
        h = plot_h * c / peak
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{COLORS["bar"]}">'
            f"<title>{edges[i]:.2f}–{edges[i + 1]:.2f} ms: {c}</title></rect>"
        )
    for name, value in sorted(pct.items(), key=lambda kv: kv[1]):
        if math.isfinite(value) and lo <= value <= hi:
            x = x_of(value)
            body.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#c62828" '
                f'stroke-dasharray="3 2"/><text x="{x + 2:.1f}" y="{top + 9}" font-size="9">{_e(name)} '
                f"{value:.1f}</text>"
            )
    body.append(f'<text x="{left}" y="{height - 8}" font-size="10">{lo:.1f} ms</text>')
    body.append(f'<text x="{width - 10}" y="{height - 8}" font-size="10" text-anchor="end">{hi:.1f} ms</text>')
    return _svg(width, height, body, "latency distribution")


def _matrix_from(evidence: Mapping[str, Any]) -> tuple[list[str], list[str], list[list[Any]], list[list[Any]] | None] | None:
    reach = evidence.get("reachability")
    if isinstance(reach, Mapping) and reach and all(isinstance(v, Mapping) for v in reach.values()):
        rows = [str(r) for r in reach]
        cols = sorted({str(c) for v in reach.values() for c in v})
        cells = [[reach[r].get(c) for c in cols] for r in reach]
        return rows, cols, cells, None
    matrix = evidence.get("matrix")
    if isinstance(matrix, Mapping):
        rows, cols, cells = matrix.get("rows"), matrix.get("cols"), matrix.get("cells")
        if (
            isinstance(rows, list)
            and isinstance(cols, list)
            and isinstance(cells, list)
            and len(cells) == len(rows)
            and all(isinstance(row, list) and len(row) == len(cols) for row in cells)
        ):
            expected = matrix.get("expected")
            if not (isinstance(expected, list) and len(expected) == len(rows)):
                expected = None
            return [str(r) for r in rows], [str(c) for c in cols], cells, expected
    return None


def reachability_matrix(evidence: Mapping[str, Any], cell: int = 26) -> str:
    """Sources down, destinations across; red where reachability differs from the expectation, green where it matches."""
    parsed = _matrix_from(evidence)
    if parsed is None:
        return ""
    rows, cols, cells, expected = parsed
    label_w = min(220, 8 + 7 * max(len(r) for r in rows))
    head_h = min(160, 8 + 6 * max(len(c) for c in cols))
    # rotated column labels lean right past the last cell: leave room for them
    width, height = label_w + cell * len(cols) + int(head_h * 0.6) + 10, head_h + cell * len(rows) + 10
    body = []
    for j, c in enumerate(cols):
        x = label_w + j * cell + cell / 2
        body.append(
            f'<text transform="translate({x:.1f},{head_h - 4}) rotate(-60)" font-size="10">{_e(c)}</text>'
        )
    for i, r in enumerate(rows):
        y = head_h + i * cell
        body.append(f'<text x="{label_w - 4}" y="{y + cell * 0.65:.1f}" text-anchor="end" font-size="10">{_e(r)}</text>')
        for j, value in enumerate(cells[i]):
            want = expected[i][j] if expected and j < len(expected[i]) else None
            if value is None:
                fill, word = "#bdbdbd", "unknown"
            elif want is not None and bool(value) != bool(want):
                fill, word = COLORS["fail"], "reachable, expected blocked" if value else "blocked, expected reachable"
            elif want is not None:
                fill, word = ("#81c784", "reachable as expected") if value else ("#c8e6c9", "blocked as expected")
            else:
                fill, word = ("#64b5f6", "reachable") if value else ("#e0e0e0", "blocked")
            body.append(
                f'<rect x="{label_w + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>{_e(r)} → {_e(cols[j])}: {_e(word)}</title></rect>"
            )
    return _svg(width, height, body, "network reachability matrix")


PERCENTILE_KEYS = (("avg", "avg_us"), ("p50", "p50_us"), ("p90", "p90_us"), ("p95", "p95_us"), ("p99", "p99_us"))


def percentiles_chart(latency_us: Any, width: int = 420) -> str:
    """Horizontal bars of a latency summary (perf's ``latency_us``: avg/p50/p90/p95/p99 in µs), drawn in ms."""
    if not isinstance(latency_us, Mapping):
        return ""
    rows = [(label, latency_us.get(key)) for label, key in PERCENTILE_KEYS]
    rows = [(label, float(v) / 1000.0) for label, v in rows if _numbers([v])]
    if not rows:
        return ""
    left, bar_h, gap = 40, 14, 6
    plot_w = width - left - 70
    peak = max(v for _, v in rows) or 1.0
    body = []
    for i, (label, value) in enumerate(rows):
        y = 6 + i * (bar_h + gap)
        w = max(1.0, plot_w * value / peak)
        body.append(
            f'<text x="{left - 6}" y="{y + bar_h - 3}" text-anchor="end" font-size="10">{label}</text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{COLORS["bar"]}"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}" font-size="10">{value:.2f} ms</text>'
        )
    count = latency_us.get("count")
    height = 10 + len(rows) * (bar_h + gap) + (14 if count else 0)
    if count:
        body.append(f'<text x="{left}" y="{height - 4}" font-size="10">{_e(count)} requests</text>')
    return _svg(width, height, body, "latency percentiles")


def windows_chart(windows: Any, width: int = 520, height: int = 150) -> str:
    """Measurement windows left to right: throughput bars, p99 latency dots (perf's stability picture)."""
    if not isinstance(windows, Sequence) or isinstance(windows, str) or len(windows) < 2:
        return ""
    points = []
    for w in windows:
        if not isinstance(w, Mapping) or not _numbers([w.get("throughput")]):
            return ""
        p99 = w.get("p99_us")
        points.append((float(w["throughput"]), float(p99) / 1000.0 if _numbers([p99]) else None))
    left, bottom, top = 44, 28, 12
    plot_w, plot_h = width - left - 44, height - bottom - top
    t_peak = max(t for t, _ in points) or 1.0
    p_peak = max((p for _, p in points if p is not None), default=0.0) or 1.0
    slot = plot_w / len(points)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#555"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="9">{t_peak:.0f}/s</text>',
        f'<text x="{left + plot_w + 4}" y="{top + 8}" font-size="9" fill="{COLORS["fail"]}">{p_peak:.1f} ms</text>',
    ]
    for i, (t, p) in enumerate(points):
        h = plot_h * t / t_peak
        x = left + i * slot
        body.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{COLORS["bar"]}" opacity="0.75"><title>window {i}: {t:.1f} infer/s</title></rect>'
        )
        if p is not None:
            cy = top + plot_h - plot_h * p / p_peak
            body.append(
                f'<circle cx="{x + slot / 2:.1f}" cy="{cy:.1f}" r="3" fill="{COLORS["fail"]}">'
                f"<title>window {i}: p99 {p:.2f} ms</title></circle>"
            )
    body.append(
        f'<text x="{left}" y="{height - 6}" font-size="10">bars: throughput per window · dots: p99 latency</text>'
    )
    return _svg(width, height, body, "measurement windows")


def ratio_chart(evidence: Mapping[str, Any], width: int = 420) -> str:
    """Current/baseline ratios with their confidence intervals around 1.0 (perf regression verdicts)."""
    rows = []
    for key, label in (("throughput_ratio", "throughput"), ("p99_ratio", "p99 latency")):
        r = evidence.get(key)
        if isinstance(r, Mapping) and _numbers([r.get("estimate"), r.get("low"), r.get("high")]):
            rows.append((label, float(r["estimate"]), float(r["low"]), float(r["high"])))
    if not rows:
        return ""
    left, row_h = 80, 26
    plot_w = width - left - 20
    lo = min(0.8, *(r[2] for r in rows))
    hi = max(1.2, *(r[3] for r in rows))

    def x_of(v: float) -> float:
        return left + plot_w * (v - lo) / (hi - lo)

    height = 24 + len(rows) * row_h
    body = [
        f'<line x1="{x_of(1.0):.1f}" y1="4" x2="{x_of(1.0):.1f}" y2="{height - 14}" stroke="#555" stroke-dasharray="3 2"/>',
        f'<text x="{x_of(1.0):.1f}" y="{height - 3}" text-anchor="middle" font-size="9">baseline = 1.0</text>',
    ]
    for i, (label, est, low, high) in enumerate(rows):
        y = 12 + i * row_h
        body.append(
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="10">{label}</text>'
            f'<line x1="{x_of(low):.1f}" y1="{y}" x2="{x_of(high):.1f}" y2="{y}" stroke="{COLORS["bar"]}" stroke-width="3"/>'
            f'<circle cx="{x_of(est):.1f}" cy="{y}" r="4" fill="{COLORS["bar"]}"><title>{label}: {est:.3f} '
            f"(CI {low:.3f} to {high:.3f})</title></circle>"
        )
    return _svg(width, height, body, "change against baseline")
