"""Small charts for the console, drawn by hand as inline SVG (no script, no outside asset).

:func:`per_minute` buckets times into the last hour's minutes; :func:`columns` draws them;
:func:`percentile` and :func:`latency_bars` show each action's p50 and p99. Every label goes
through :func:`html.escape`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

__all__ = ["columns", "latency_bars", "per_minute", "percentile"]

_WIDTH = 480
_HEIGHT = 90


def per_minute(times: Iterable[float], now: float, minutes: int = 60) -> list[int]:
    """How many of ``times`` (epoch seconds) fall in each of the last ``minutes`` minutes,
    oldest first."""
    counts = [0] * minutes
    start = now - minutes * 60
    for moment in times:
        slot = int((moment - start) // 60)
        if 0 <= slot < minutes:
            counts[slot] += 1
    return counts


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values`` (nearest rank; 0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def columns(counts: Sequence[int], title: str, css: str = "bar") -> str:
    """A column chart of ``counts`` (one column per minute) with its title and peak."""
    peak = max(counts, default=0)
    width = _WIDTH / max(1, len(counts))
    bars: list[str] = []
    for n, count in enumerate(counts):
        if not count:
            continue
        height = max(1.0, (_HEIGHT - 20) * count / peak)
        bars.append(
            f'<rect class="{css}" x="{n * width:.1f}" y="{_HEIGHT - height:.1f}"'
            f' width="{max(1.0, width - 1):.1f}" height="{height:.1f}">'
            f"<title>{count}</title></rect>"
        )
    label = html.escape(f"{title} (peak {peak}/min, total {sum(counts)})")
    return (
        f'<figure class="chart"><svg viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img"'
        f' aria-label="{label}"><line class="axis" x1="0" y1="{_HEIGHT}" x2="{_WIDTH}"'
        f' y2="{_HEIGHT}"/>{"".join(bars)}</svg><figcaption>{label}</figcaption></figure>'
    )


def latency_bars(timings: Iterable[tuple[str, float]], title: str, most: int = 8) -> str:
    """Horizontal bars of p50 and p99 (ms) for the ``most`` busiest actions."""
    by_action: dict[str, list[float]] = {}
    for action, ms in timings:
        by_action.setdefault(action, []).append(ms)
    busiest = sorted(by_action.items(), key=lambda kv: -len(kv[1]))[:most]
    if not busiest:
        return f'<figure class="chart"><figcaption>{html.escape(title)}: no steps yet' \
               "</figcaption></figure>"
    rows = [(a, percentile(v, 0.5), percentile(v, 0.99), len(v)) for a, v in busiest]
    top = max(p99 for _, _, p99, _ in rows) or 1.0
    height = 22 * len(rows) + 4
    parts: list[str] = []
    for n, (action, p50, p99, count) in enumerate(rows):
        y = 4 + n * 22
        label = html.escape(f"{action}  p50 {p50:.0f} ms  p99 {p99:.0f} ms  ({count})")
        parts.append(
            f'<rect class="p99" x="0" y="{y}" width="{_WIDTH * p99 / top:.1f}" height="18"/>'
            f'<rect class="p50" x="0" y="{y}" width="{_WIDTH * p50 / top:.1f}" height="18"/>'
            f'<text x="4" y="{y + 13}">{label}</text>'
        )
    return (
        f'<figure class="chart"><svg viewBox="0 0 {_WIDTH} {height}" role="img"'
        f' aria-label="{html.escape(title)}">{"".join(parts)}</svg>'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )
