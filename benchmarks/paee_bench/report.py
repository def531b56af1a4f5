"""results.json (everything measured) and results.md (the tables a reader decides from).

results.json top-level keys (`RESULT_KEYS`): ``format``, ``format_version``, ``command``, ``started``,
``seconds``, ``settings``, ``environment``, ``model``, ``documents``, ``artifacts``, ``peak``, ``backends``
(one entry per requested backend: ``status`` ok / skipped / failed, ``reason`` unless ok, and for a backend
that ran: ``precision``, ``device``, ``kind``, ``runtime``, ``latency_ms``, ``docs_per_s``, ``encoder``,
``parity``, ``throughput``, ``per_document``), ``head_vs_loop``, ``plots``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FORMAT = "paee-bench-results"
FORMAT_VERSION = 1
RESULT_KEYS = ("format", "format_version", "command", "started", "seconds", "settings", "environment", "model",
               "documents", "artifacts", "peak", "backends", "head_vs_loop", "plots")
STATUSES = ("ok", "skipped", "failed")


def write_json(results: Mapping[str, Any], path: Path) -> None:
    Path(path).write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits + 1}g}" if abs(value) < 1 else f"{value:.{max(digits - 2, 1)}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return lines + [""]


def _ok(results: Mapping[str, Any]) -> dict[str, Any]:
    return {n: e for n, e in results["backends"].items() if e["status"] == "ok"}


def _header(r: Mapping[str, Any]) -> list[str]:
    env, model, docs, s = r["environment"], r["model"], r["documents"], r["settings"]
    flags = ", ".join(f for f, present in env["cpu_flags"].items() if present) or "none of interest"
    gpu = ", ".join(env["gpu"]["devices"]) if env["gpu"].get("available") else f"none ({env['gpu'].get('reason')})"
    tokens, entities = docs.get("tokens", {}), docs.get("entities", {})
    return [
        "# paee-bench report", "",
        f"* command: `{r['command']}`",
        f"* started {r['started']}, {r['seconds']:.0f} s",
        f"* machine: {env['cpu']}, {env['usable_cores']} usable cores; flags: {flags}; GPU: {gpu}",
        f"* load average at start {env.get('load_average_start')}, at end {env.get('load_average_end')}",
        f"* model: {model['checkpoint']} - encoder hidden {model['hidden_size']}, {model['layers']} layers, "
        f"{model['heads']} heads, intermediate {model['intermediate_size']} ({model['encoder_params_M']} M parameters), "
        f"head variant {model['variant']} ({model['head_params_M']} M), N = {model['max_entities']}, R = {model['num_relations']}",
        f"* documents: {docs['source']}; {docs['count']} used ({docs['skipped']} refused by the featurizer, "
        f"{docs['truncated']} truncated); wordpieces median {tokens.get('median')} / max {tokens.get('max')}, "
        f"{docs['longer_than_window']} over the window; entities median {entities.get('median')} / max {entities.get('max')}",
        f"* threads {s['threads']} (torch, ONNX Runtime, OpenVINO, Triton models), seed {s['seed']}, "
        f"{s['warmup_documents']} warm-up documents per backend, versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
        "",
    ]


def _latency_rows(r: Mapping[str, Any]) -> list[list[Any]]:
    ok = _ok(r)
    ref = ok.get("torch", {}).get("latency_ms", {}).get("total", {}).get("p50")
    rows = []
    for name, e in ok.items():
        lat = e["latency_ms"]
        p50 = lat["total"]["p50"]
        rows.append([name, e["precision"], p50, lat["total"]["p90"], lat["total"]["p99"], e["docs_per_s"],
                     *(lat.get(stage, {}).get("p50") for stage in ("featurize", "encoder", "head", "decode")),
                     f"{ref / p50:.2f}x" if ref else "n/a"])
    return rows


def _parity_rows(r: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for name, e in _ok(r).items():
        p = e.get("parity") or {}
        tri = p.get("triples", {})
        rows.append([name, p.get("max_abs_logit_diff"), p.get("mean_abs_logit_diff"), tri.get("jaccard"),
                     tri.get("identical_documents"), p.get("pair_argmax_agreement"), p.get("max_abs_score_diff"),
                     p.get("f1_change")])
    return rows


def _encoder_rows(r: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for name, e in _ok(r).items():
        enc = e.get("encoder") or {}
        if "effective_tflops" not in enc:
            rows.append([name, e["precision"], "n/a", "n/a", "n/a", "n/a", enc.get("note", "n/a")])
            continue
        rows.append([name, enc["precision"], enc["gflop"], enc["seconds"], enc["effective_tflops"],
                     enc.get("peak_tflops"), _fmt(enc.get("fraction_of_peak"))])
    return rows


def _series_rows(r: Mapping[str, Any], key: str) -> tuple[list[str], list[list[Any]]]:
    levels: list[str] = sorted({lvl for e in _ok(r).values() for lvl in (e.get("throughput") or {}).get(key, {})}, key=int)
    rows = [[name, *((e.get("throughput") or {}).get(key, {}).get(lvl) for lvl in levels)]
            for name, e in _ok(r).items() if (e.get("throughput") or {}).get(key)]
    return levels, rows


def render_markdown(r: Mapping[str, Any]) -> str:
    """The results.md text: header, then one table per question a reader asks."""
    lines = _header(r)
    lines += ["## Latency per document (batch 1, whole pipeline: featurize, encoder, head, decode)", ""]
    lines += _table(["backend", "precision", "p50 ms", "p90 ms", "p99 ms", "docs/s", "featurize p50", "encoder p50",
                     "head p50", "decode p50", "speed vs torch (p50)"], _latency_rows(r))
    lines += ["## Parity with PyTorch fp32 (same documents)", ""]
    lines += _table(["backend", "max abs logit diff", "mean abs logit diff", "triple Jaccard", "identical docs",
                     "pair argmax agreement", "max abs score diff", "F1 change"], _parity_rows(r))
    lines += ["## Encoder against this machine's matrix-multiply peak (measured in this run)", "",
              "Encoder FLOPs counted from the config (`paee_bench.flops`); effective = sum of FLOPs / sum of "
              "encoder time over the documents; peak = best square matmul at the matching precision (`paee_bench.peak`).",
              ""]
    lines += _table(["backend", "precision", "encoder GFLOP", "encoder s", "effective TFLOP/s", "peak TFLOP/s",
                     "fraction of peak"], _encoder_rows(r))
    peak_rows = [[p["device"], p["precision"], round(p["ops_per_s"] / 1e12, 3), p["method"], p["size"],
                  "; ".join(f"{m} {v / 1e12:.3f}" for m, v in p["methods"].items())]
                 for p in r["peak"].values() if "ops_per_s" in p]
    peak_rows += [[key.split("/")[0], key.split("/")[1], "n/a", p["unavailable"], "", ""]
                  for key, p in r["peak"].items() if "unavailable" in p]
    lines += _table(["device", "precision", "peak T(FL)OP/s", "best method", "n", "all methods (T/s)"], peak_rows)
    levels, rows = _series_rows(r, "batch_size")
    lines += ["## Throughput against batch size (in-process, whole pipeline, docs/s)", ""]
    lines += _table(["backend", *(f"b={lvl}" for lvl in levels)], rows) if rows else ["not measured", ""]
    load_rows = [[name, int(c), load["docs_per_s"], load["latency_ms"].get("p50"), load["latency_ms"].get("p99"),
                  load["failed"]]
                 for name, e in _ok(r).items() for c, load in (e.get("throughput") or {}).get("load", {}).items()]
    lines += ["## Throughput against concurrency (Triton, closed-loop clients, one request in flight each)", ""]
    lines += _table(["backend", "clients", "docs/s", "p50 ms under load", "p99 ms under load", "failed"], load_rows) \
        if load_rows else ["not measured", ""]
    lines += _server_breakdown(r)
    lines += _head_loop(r.get("head_vs_loop"))
    not_ok = [[name, e["status"], e.get("reason", "")] for name, e in r["backends"].items() if e["status"] != "ok"]
    lines += ["## Backends that did not run", ""]
    lines += _table(["backend", "status", "reason"], not_ok) if not_ok else ["every requested backend ran", ""]
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in r.get("plots", [])] + [""]
    return "\n".join(lines)


def _server_breakdown(r: Mapping[str, Any]) -> list[str]:
    """Per served backend and concurrency: the client's mean latency beside Triton's mean per model and phase;
    client minus the ensemble's total is the network and (de)serialisation."""
    rows = []
    for name, e in _ok(r).items():
        for c, load in (e.get("throughput") or {}).get("load", {}).items():
            server = load.get("server_ms") or {}
            client = load["latency_ms"].get("mean")
            for model, ms in sorted(server.items(), key=lambda kv: (kv[0] != "paee", kv[0])):  # ensemble first
                if model == "paee":  # only the ensemble's total means something (`paee.serving.stats`)
                    outside = "" if client is None else round(client - ms["success_ms"], 2)
                    rows.append([name, int(c), model, client, "", "", "", "", ms["success_ms"], outside])
                else:
                    rows.append([name, int(c), model, "", ms["queue_ms"], ms["compute_input_ms"], ms["compute_infer_ms"],
                                 ms["compute_output_ms"], ms["success_ms"], ""])
    lines = ["## Where a served request spends its time (Triton's statistics, mean ms per request)", "",
             "Differenced `/v2/models/stats` over each load run (`paee.serving.stats`). `paee` is the ensemble: its "
             "total is the time inside the server; client minus that is network and (de)serialisation. The other "
             "rows are its steps, whose totals add up to the ensemble's (queue = waiting for the dynamic batcher "
             "or a free instance).", ""]
    header = ["backend", "clients", "model", "client mean", "queue", "compute input", "compute infer",
              "compute output", "total", "network + serialisation"]
    return lines + (_table(header, rows) if rows else ["not measured", ""])


def _head_loop(h: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Batched pair stage against the N x N map and the peers' Python loops (pair representation, PyTorch fp32)", ""]
    if not h or "ms_per_document" not in h:
        return lines + [f"not measured: {(h or {}).get('reason', 'disabled')}", ""]
    ms = h["ms_per_document"]
    diffs = ", ".join(f"{k} {v:.2g}" for k, v in h["max_abs_diff"].items())
    lines.append(f"{h['documents']} documents in one batch (entities {h['entities']}, {h['real_pairs']} real pairs, "
                 f"{h['pair_slots_batched']} pair slots when padded to the batch's most, {h['pair_slots_map']} in the "
                 f"N x N maps, padded length {h['padded_length']}); "
                 f"outputs agree on every real pair (max abs diff {diffs}); the whole batched head takes "
                 f"{h['whole_head_ms_per_document']} ms per document.")
    lines.append("")
    lines += _table(["implementation", "ms per document", "time / batched"], [
        ["batched over the real pairs (ours)", ms["batched"], "1.00"],
        ["batched over the whole N x N map (the map variants' fill)", ms["map"], f"{h['ratio_map_over_batched']:.2f}"],
        ["per-document loop (ATLOP get_hrt granularity)", ms["per_document"], f"{h['ratio_per_document_over_batched']:.2f}"],
        ["per-pair loop", ms["per_pair"], f"{h['ratio_per_pair_over_batched']:.2f}"],
    ])
    return lines


def check_results(results: Mapping[str, Any]) -> list[str]:
    """Problems with a results dict (missing keys, a backend without status or reason); empty when sound."""
    problems = [f"missing key {k!r}" for k in RESULT_KEYS if k not in results]
    for name, e in results.get("backends", {}).items():
        if e.get("status") not in STATUSES:
            problems.append(f"backend {name}: status {e.get('status')!r}")
        elif e["status"] != "ok" and not e.get("reason"):
            problems.append(f"backend {name}: {e['status']} without a reason")
    return problems


__all__ = ["FORMAT", "FORMAT_VERSION", "RESULT_KEYS", "write_json", "render_markdown", "check_results"]
