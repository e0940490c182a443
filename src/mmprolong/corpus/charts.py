"""Bar charts of fact groups, drawn with matplotlib and embedded as PNG (values shown only as bars)."""

from __future__ import annotations

import io


def bar_chart_png(labels: list[str], values: list[float], *, title: str, width_in: float, height_in: float) -> bytes:
    """A PNG of a bar chart; identical bytes for identical inputs (no timestamps or software tag)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    ax = fig.add_subplot()
    ax.bar(range(len(values)), values, color="#4472c4")
    ax.set_xticks(range(len(labels)), [_short(label) for label in labels], fontsize=7, rotation=15)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _short(label: str) -> str:
    return label if len(label) <= 18 else label[:17] + "…"
