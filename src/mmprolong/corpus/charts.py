"""Bar and line charts of fact groups, drawn with matplotlib (Agg) and embedded in the PDF as PNG.

Values appear only in the image (bar heights, points, data labels), never in the text layer, so a fact
shown in a chart has source "figure". The PNG carries no software tag or timestamp, so equal inputs give
equal bytes. A figure costs ~50 ms, more than a page of text, so the composer allows at most one per four pages.
"""

from __future__ import annotations

import io

DPI = 110


def chart_png(style: str, labels: list[str], values: list[float], value_labels: list[str], *, title: str,
              width_in: float, height_in: float, color: str) -> bytes:
    """A PNG of a bar chart (one bar per label) or a line chart (one point per label), values labelled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.1, 0.2, 0.86, 0.66))
    positions = list(range(len(values)))
    if style == "line":
        ax.plot(positions, values, color=color, marker="o", linewidth=2)
        for x, y, text in zip(positions, values, value_labels):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
        ax.margins(x=0.08, y=0.25)
    else:
        bars = ax.bar(positions, values, color=color, width=0.6)
        ax.bar_label(bars, labels=value_labels, fontsize=7, padding=2)
        ax.margins(y=0.15)
    ticks = _tick_labels(labels)
    crowded = len(ticks) > 4 and max(len(t) for t in ticks) > 10
    ax.set_xticks(positions, ticks, fontsize=7, rotation=15 if crowded else 0)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _tick_labels(labels: list[str]) -> list[str]:
    """Drop a first word every label shares (the organisation's name), so ticks stay short and readable."""
    first = {label.split()[0] for label in labels}
    if len(first) == 1 and all(len(label.split()) > 1 for label in labels) and len(labels) > 1:
        return [label.split(" ", 1)[1] for label in labels]
    return list(labels)
