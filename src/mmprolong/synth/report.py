"""The mixture plot: what was built, by length and task, against the plan, and where its evidence pages sit."""

from __future__ import annotations

import json
from pathlib import Path


def plot_mixture(lengths_path: Path, summary: dict, out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(lengths_path).read_text())
    tasks = sorted(summary["planned"]["share_by_task"])
    buckets = list(summary["planned"]["share_by_bucket"])
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))

    ax = axes[0]
    series = [[t for t, k in zip(data["tokens"], data["task"]) if k == task] for task in tasks]
    ax.hist(series, bins=40, stacked=True, label=tasks)
    ax.set(title=f"sample lengths ({summary['samples']} samples)", xlabel="tokens", ylabel="samples")
    ax.legend(fontsize=8)

    for ax, key, names, title in ((axes[1], "share_by_bucket", buckets, "token share by length bucket"),
                                  (axes[2], "share_by_task", tasks, "token share by task")):
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [summary["planned"][key][n] for n in names], 0.4, label="planned")
        ax.bar([i + 0.2 for i in x], [summary[key].get(n, 0) for n in names], 0.4, label="achieved")
        ax.set_xticks(list(x), names, rotation=20, fontsize=8)
        ax.set(title=title, ylabel="share of tokens")
        ax.legend(fontsize=8)
    ax = axes[3]
    offsets = [o for found in data["evidence_offsets"] for o in found]
    edges = summary["evidence_pages_by_offset"]["edges"]
    ax.hist(offsets, bins=40, range=(0, edges[-1]), color="tab:green")
    for edge in edges[1:-1]:
        ax.axvline(edge, color="grey", lw=0.8, ls=":")
    ax.set(title=f"where the evidence sits ({len(offsets)} pages, {summary['questions']} questions)",
           ylabel="evidence pages", xlabel="tokens of pages before the evidence page")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return out_png
