"""Bounded load generator for the ``paee`` ensemble: N concurrent clients, stopped by a request or time budget.

`run_load` starts ``concurrency`` client threads (one tritonclient connection each, HTTP or gRPC) that
send documents round-robin, each waiting for its answer before sending the next (closed loop: at most
``concurrency`` requests in flight, the way N independent callers behave). No new request starts once
``max_requests`` have been started or ``max_seconds`` have passed; requests in flight then finish
(bounded by the client timeout). Optional warm-up requests run before the clock starts and are not
counted.

The `LoadReport` holds the counts (requests, succeeded, failed, with the first distinct error messages),
the throughput (documents per second over the measured wall time), latency percentiles (p50/p90/p99,
per request, client-side end to end) and what stopped the run; `LoadReport.to_json` is what
``paee-client --load`` writes. Error responses are counted as failures and never retried; connection
errors are retried only when ``retries`` > 0 (default 0, so that a load test sees every failure).

Numpy and tritonclient only (never torch), like the rest of `paee.serving`.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from paee.data.schema import Document
from paee.errors import PaeeUserError
from paee.serving.client import MODEL_NAME, PROTOCOLS, PaeeClient, PaeeServingError, encode_document
from paee.serving.stats import breakdown, format_breakdown, snapshot

DEFAULT_CONCURRENCY = 32
DEFAULT_MAX_REQUESTS = 2000
DEFAULT_MAX_SECONDS = 60.0
#: Distinct error messages kept in the report (the count of failures is always complete).
MAX_ERROR_MESSAGES = 5
#: Latency percentiles reported.
PERCENTILES = (50, 90, 99)
STOPPED_BY_REQUESTS = "max_requests"
STOPPED_BY_TIME = "max_seconds"


@dataclass(frozen=True)
class LoadConfig:
    """What to run.

    Attributes:
        url: ``host:port`` of the server's HTTP or gRPC endpoint.
        protocol: ``http`` or ``grpc``.
        concurrency: client threads, each with at most one request in flight.
        max_requests: no request starts after this many have started (warm-up not counted).
        max_seconds: no request starts after this many seconds.
        timeout_s: client timeout per request.
        retries: retries after a connection error (error responses are never retried).
        warmup: requests sent (``concurrency`` at a time) before the clock starts; not counted.
        model_name: the ensemble's name.
    """

    url: str
    protocol: str = "http"
    concurrency: int = DEFAULT_CONCURRENCY
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_seconds: float = DEFAULT_MAX_SECONDS
    timeout_s: float = 60.0
    retries: int = 0
    warmup: int = 0
    model_name: str = MODEL_NAME

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise PaeeUserError(f"protocol {self.protocol!r} is not one of {PROTOCOLS}")
        for name in ("concurrency", "max_requests"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PaeeUserError(f"{name} must be a positive integer, got {value!r}")
        if not self.max_seconds > 0 or not self.timeout_s > 0:
            raise PaeeUserError(f"max_seconds and timeout_s must be > 0, got {self.max_seconds}, {self.timeout_s}")
        if self.retries < 0 or self.warmup < 0:
            raise PaeeUserError(f"retries and warmup must be >= 0, got {self.retries}, {self.warmup}")


@dataclass
class LoadReport:
    """The outcome of one bounded run (see the module docstring); ``to_json`` for the file."""

    config: LoadConfig
    documents: int  # distinct documents cycled through
    requests: int  # requests started and finished (= succeeded + failed)
    succeeded: int
    failed: int
    seconds: float  # wall time from the first request to the last answer
    docs_per_s: float  # succeeded / seconds
    latency_ms: dict[str, float]  # p50, p90, p99, mean, min, max of succeeded requests
    stopped_by: str  # "max_requests" or "max_seconds"
    errors: list[str] = field(default_factory=list)  # the first distinct error messages
    triples: int = 0  # triples returned over all succeeded requests (a cheap sanity signal)
    #: Triton's own view per model over the measured run (`paee.serving.stats.breakdown`): mean ms per request
    #: in the queue, compute input / infer / output, and in total (success); {} when the server gave none
    server_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "processor": platform.processor() or platform.machine()}
        return out

    def summary(self) -> str:
        """Two lines for a terminal."""
        lat = self.latency_ms
        return (
            f"{self.config.protocol} {self.config.url}: {self.requests} requests ({self.succeeded} ok, {self.failed} failed) "
            f"in {self.seconds:.1f} s from {self.config.concurrency} clients, stopped by {self.stopped_by}\n"
            f"throughput {self.docs_per_s:.1f} docs/s; latency ms p50 {lat.get('p50', float('nan')):.1f} "
            f"p90 {lat.get('p90', float('nan')):.1f} p99 {lat.get('p99', float('nan')):.1f} max {lat.get('max', float('nan')):.1f}"
        ) + (f"\nserver side, mean per request:\n{format_breakdown(self.server_ms)}" if self.server_ms else "")


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 (linear interpolation), mean, min, max in milliseconds; {} for no samples."""
    if not latencies_s:
        return {}
    ms = 1000.0 * np.asarray(latencies_s, dtype=np.float64)
    out = {f"p{q}": round(float(v), 2) for q, v in zip(PERCENTILES, np.percentile(ms, PERCENTILES))}
    out.update(mean=round(float(ms.mean()), 2), min=round(float(ms.min()), 2), max=round(float(ms.max()), 2))
    return out


class _Run:
    """Shared state of the client threads: tickets, deadline, results (guarded by one lock)."""

    def __init__(self, config: LoadConfig, payloads: Sequence[bytes], titles: Sequence[str]):
        self.config = config
        self.payloads = payloads
        self.titles = titles
        self.lock = threading.Lock()
        self.started = 0
        self.deadline = float("inf")
        self.stopped_by = STOPPED_BY_REQUESTS
        self.latencies: list[float] = []
        self.failed = 0
        self.triples = 0
        self.errors: list[str] = []
        self.last_answer = 0.0

    def ticket(self) -> int | None:
        """The next request number, or None when the budget is spent."""
        with self.lock:
            if self.started >= self.config.max_requests:
                return None
            if time.perf_counter() >= self.deadline:
                self.stopped_by = STOPPED_BY_TIME
                return None
            self.started += 1
            return self.started - 1

    def record(self, ticket: int, seconds: float, result: Mapping[str, Any] | BaseException) -> None:
        with self.lock:
            self.last_answer = time.perf_counter()
            if isinstance(result, BaseException):
                self.failed += 1
                doc = ticket % len(self.payloads)
                message = f"document {doc} ({self.titles[doc]!r}): {result}"
                if len(self.errors) < MAX_ERROR_MESSAGES and all(str(result) not in e for e in self.errors):
                    self.errors.append(message)
            else:
                self.latencies.append(seconds)
                self.triples += len(result.get("triples", ()))


def _title(doc: Document | Mapping[str, Any] | str | bytes) -> str:
    """The document's title for error messages ('' when the payload has none or is not JSON)."""
    if isinstance(doc, Document):
        return doc.title
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except (ValueError, UnicodeDecodeError):
            return ""
    return str(doc.get("title", "")) if isinstance(doc, Mapping) else ""


def _worker(client: PaeeClient, run: _Run) -> None:
    while (ticket := run.ticket()) is not None:
        payload = run.payloads[ticket % len(run.payloads)]
        t0 = time.perf_counter()
        try:
            result: Mapping[str, Any] | BaseException = client.predict_raw(payload)
        except Exception as e:  # PaeeServingError, or an answer that is not the TRIPLES JSON
            result = e if isinstance(e, PaeeServingError) else PaeeServingError(f"{type(e).__name__}: {e}")
        run.record(ticket, time.perf_counter() - t0, result)


def _warm_up(client: PaeeClient, payloads: Sequence[bytes], config: LoadConfig) -> None:
    """``config.warmup`` requests, ``concurrency`` at a time; errors here surface in the measured run."""
    if config.warmup:
        items = [payloads[i % len(payloads)] for i in range(config.warmup)]
        client.predict_many(items, concurrency=min(config.concurrency, config.warmup), return_exceptions=True)


def run_load(documents: Sequence[Document | Mapping[str, Any] | str | bytes], config: LoadConfig) -> LoadReport:
    """Run the bounded load test of ``config`` with ``documents`` (sent round-robin); see the module docstring.

    Raises:
        ValueError: no documents.
        PaeeServingError: the server is not reachable or the ensemble is not ready before the run.
    """
    if not documents:
        raise PaeeUserError("the load test needs at least one document")
    payloads = [encode_document(d) for d in documents]
    titles = [_title(d) for d in documents]
    client = PaeeClient(config.url, config.protocol, timeout_s=config.timeout_s, retries=config.retries,
                        concurrency=config.concurrency, model_name=config.model_name)
    with client:
        if not client.is_ready():
            raise PaeeServingError(f"{config.protocol}://{config.url}: server or model {config.model_name!r} not ready")
        _warm_up(client, payloads, config)
        stats_before = snapshot(client.triton_client())
        run = _Run(config, payloads, titles)
        threads = [threading.Thread(target=_worker, args=(client, run), name=f"paee-load-{i}", daemon=True)
                   for i in range(config.concurrency)]
        start = time.perf_counter()
        run.deadline = start + config.max_seconds
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        server_ms = breakdown(stats_before, snapshot(client.triton_client()))
    seconds = max(run.last_answer - start, 1e-9) if run.started else 0.0
    succeeded = len(run.latencies)
    return LoadReport(
        config=config, documents=len(payloads), requests=succeeded + run.failed, succeeded=succeeded,
        failed=run.failed, seconds=round(seconds, 3), docs_per_s=round(succeeded / seconds, 2) if seconds else 0.0,
        latency_ms=latency_summary(run.latencies), stopped_by=run.stopped_by, errors=run.errors, triples=run.triples,
        server_ms=server_ms,
    )
