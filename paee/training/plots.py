"""Training curves from a run's `metrics.jsonl`: loss per step and dev F1 / Ign F1 / Rela per epoch.

matplotlib is optional (extra `bench`); without it no plot is written and the caller is told why.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_training_curves(metrics_path: str | Path, out_png: str | Path, title: str | None = None) -> Path | None:
    """Write a two-panel PNG (loss against step; dev scores against epoch). Returns None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    events = read_metrics(metrics_path)
    steps = [e for e in events if e["event"] == "step"]
    evals = [e for e in events if e["event"] == "eval"]
    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(10, 3.8))
    if steps:
        ax_loss.plot([e["step"] for e in steps], [e["loss"] for e in steps], label="total")
        for part in sorted(steps[-1].get("parts", {})):
            ax_loss.plot([e["step"] for e in steps], [e["parts"][part] for e in steps], label=part, alpha=0.6)
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training loss")
    if steps:  # a run shorter than one logging interval has no curve to label
        ax_loss.legend(fontsize=8)
    for key, label in (("f1", "F1"), ("ign_f1", "Ign F1"), ("rela_f1", "Rela F1")):
        ax_dev.plot([e["epoch"] for e in evals], [100 * e["dev"][key] for e in evals], marker="o", label=label)
    ax_dev.set_xlabel("epoch")
    ax_dev.set_ylabel("dev score (%)")
    ax_dev.set_ylim(0, 100)
    ax_dev.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
