"""Triton's server-side time breakdown per model, from its statistics endpoint (``/v2/models/stats``).

Triton counts, per model since it loaded, how many requests succeeded and the total nanoseconds each spent
in the queue, gathering its inputs (compute input), running (compute infer) and returning its outputs
(compute output). `snapshot` reads those cumulative counters through a tritonclient (HTTP or gRPC);
`breakdown` differences two snapshots taken around a run and gives, per model, the mean milliseconds per
request of each phase: the breakdown NVIDIA's own Triton performance reports show beside the client-side
latency. For the ensemble only ``success`` (its end-to-end time inside the server) is meaningful.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The phases of ``inference_stats`` reported, in the order a request passes them (``success`` = total).
PHASES = ("queue", "compute_input", "compute_infer", "compute_output", "success")


def snapshot(triton_client: Any) -> dict[str, dict[str, tuple[int, int]]]:
    """{model: {phase: (count, ns)}} plus ``executions`` (batches run) of every loaded model, cumulative."""
    grpc = "grpc" in type(triton_client).__module__
    raw = triton_client.get_inference_statistics(as_json=True) if grpc else triton_client.get_inference_statistics()
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for model in raw.get("model_stats", []):
        stats = model.get("inference_stats", {})
        # gRPC's JSON writes int64 as strings and leaves zero fields out
        phases = {p: (int(stats.get(p, {}).get("count", 0)), int(stats.get(p, {}).get("ns", 0))) for p in PHASES}
        phases["executions"] = (int(model.get("execution_count", 0)), 0)
        out[model["name"]] = phases
    return out


def breakdown(before: Mapping[str, Mapping[str, tuple[int, int]]],
              after: Mapping[str, Mapping[str, tuple[int, int]]]) -> dict[str, dict[str, float]]:
    """Per model that served requests between the snapshots: ``requests``, ``executions`` and the mean ms
    per request of each phase (``<phase>_ms``)."""
    out: dict[str, dict[str, float]] = {}
    for model, now in after.items():
        was = before.get(model, {})
        requests = now["success"][0] - was.get("success", (0, 0))[0]
        if requests <= 0:
            continue
        row: dict[str, float] = {"requests": requests,
                                 "executions": now["executions"][0] - was.get("executions", (0, 0))[0]}
        for phase in PHASES:
            ns = now[phase][1] - was.get(phase, (0, 0))[1]
            row[f"{phase}_ms"] = round(ns / requests / 1e6, 3)
        out[model] = row
    return out


def format_breakdown(rows: Mapping[str, Mapping[str, float]]) -> str:
    """A small table for a terminal."""
    header = f"{'model':<20} {'requests':>8} {'batches':>8} " + " ".join(f"{p + ' ms':>16}" for p in PHASES)
    lines = [header]
    for model, row in sorted(rows.items()):
        lines.append(f"{model:<20} {int(row['requests']):>8} {int(row['executions']):>8} "
                     + " ".join(f"{row[f'{p}_ms']:>16.2f}" for p in PHASES))
    return "\n".join(lines)


__all__ = ["PHASES", "breakdown", "format_breakdown", "snapshot"]
