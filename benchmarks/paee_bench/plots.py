"""The report's PNG plots (matplotlib, Agg backend: no display needed).

* ``latency_vs_length.png``: batch-1 latency of each document against its length in wordpieces;
* ``latency_vs_entities.png``: the same against its entity count (the head's cost grows with n^2 pairs);
* ``throughput_vs_batch_size.png``: in-process backends, documents/s against batch size;
* ``throughput_vs_concurrency.png``: server backends, documents/s against requests in flight.

A plot without data (no server backend ran, say) still gets written, saying so, so that the report's
list of files is always the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLOTS = ("latency_vs_length.png", "latency_vs_entities.png", "throughput_vs_batch_size.png",
         "throughput_vs_concurrency.png")
DPI = 110
MARKERS = "os^vD<>ph*xP"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)


def _style(index: int) -> dict[str, Any]:
    """The same colour and marker for a backend in every plot (its position among the requested backends)."""
    return {"color": f"C{index % 10}", "marker": MARKERS[index % len(MARKERS)]}


def _finish(plt: Any, fig: Any, ax: Any, plotted: int, empty: str, xlabel: str, ylabel: str, path: Path) -> None:
    """Legend (or the empty-plot message), labels, grid; write the file."""
    if plotted:
        ax.legend(fontsize=8, ncol=2)
    else:
        _empty(ax, empty)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _latency(plt: Any, backends: Mapping[str, Any], field: str, xlabel: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    plotted = 0
    for i, (name, entry) in enumerate(backends.items()):
        docs = entry.get("per_document") or []
        if docs:
            ax.scatter([d[field] for d in docs], [d["total_ms"] for d in docs], s=14, label=name, alpha=0.75, **_style(i))
            plotted += 1
    if plotted:
        ax.set_yscale("log")
    _finish(plt, fig, ax, plotted, "no backend measured", xlabel, "latency per document, ms (batch 1, log scale)", path)


def _throughput(plt: Any, backends: Mapping[str, Any], key: str, xlabel: str, path: Path, empty: str) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    plotted = 0
    for i, (name, entry) in enumerate(backends.items()):
        series = (entry.get("throughput") or {}).get(key) or {}
        if series:
            xs = sorted(series, key=int)
            ax.plot([int(x) for x in xs], [series[x] for x in xs], label=name, **_style(i))
            plotted += 1
    if plotted:
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)  # throughput differences read against zero, not magnified
    _finish(plt, fig, ax, plotted, empty, xlabel, "documents / s", path)


def write_plots(results: Mapping[str, Any], out_dir: Path) -> list[str]:
    """Write the four PNGs of ``results`` into ``out_dir``; returns their file names."""
    plt = _pyplot()
    # every requested backend keeps its slot (its style), one that did not run just draws nothing
    ran = {name: (entry if entry.get("status") == "ok" else {}) for name, entry in results["backends"].items()}
    out_dir = Path(out_dir)
    _latency(plt, ran, "tokens", "document length, wordpieces", out_dir / PLOTS[0])
    _latency(plt, ran, "entities", "entities in the document", out_dir / PLOTS[1])
    _throughput(plt, ran, "batch_size", "batch size (documents per call)", out_dir / PLOTS[2],
                "no in-process backend measured")
    _throughput(plt, ran, "concurrency", "requests in flight", out_dir / PLOTS[3], "no server backend in this run")
    return list(PLOTS)


__all__ = ["PLOTS", "write_plots"]
